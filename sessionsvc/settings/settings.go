// Package settings is the admin-editable configuration document of
// sessionsvc (GET/PUT /magic-sessionmanager/settings), stored as one JSON
// document by the store. Secret fields (SMTP password, webhook URLs and
// signing secrets) are sealed with the secrets keyring before they are
// stored and masked when shown.
package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Mask replaces a set secret in API answers; sending it back keeps the secret.
const Mask = "********"

// SMTP is the mail relay for email alerts.
type SMTP struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"` // secret
	From     string `json:"from"`
	// TLS: "starttls" (default), "tls" (implicit) or "none".
	TLS string `json:"tls"`
}

// Webhook is a signed webhook target.
type Webhook struct {
	Name   string   `json:"name"`
	URL    string   `json:"url"`    // secret (may embed tokens)
	Secret string   `json:"secret"` // secret: HMAC key for the signature header
	Events []string `json:"events"` // empty = all
}

// EmailTemplate is one alert mail.
type EmailTemplate struct {
	Subject string `json:"subject"`
	HTML    string `json:"html"`
	Text    string `json:"text"`
}

// Settings is the document. Field names follow the Strapi plugin's where it
// has them.
type Settings struct {
	InactivityTimeout int  `json:"inactivityTimeout"` // minutes
	CleanupInterval   int  `json:"cleanupInterval"`   // stored, no effect: the lifecycle runs every CLEANUP_INTERVAL
	LastSeenRateLimit int  `json:"lastSeenRateLimit"` // stored, no effect: the plugin's last_seen_interval throttles
	RetentionDays     int  `json:"retentionDays"`     // stored, no effect: RETENTION decides
	MaxSessionAgeDays int  `json:"maxSessionAgeDays"` // stored, no effect: MAX_SESSION_AGE decides (revocations are kept that long)
	EnableGeolocation bool `json:"enableGeolocation"`

	EnableSecurityScoring   bool `json:"enableSecurityScoring"`
	BlockSuspiciousSessions bool `json:"blockSuspiciousSessions"`
	MinSecurityScore        int  `json:"minSecurityScore"` // deny below this when blockSuspiciousSessions
	MaxFailedLogins         int  `json:"maxFailedLogins"`
	LockoutMinutes          int  `json:"lockoutMinutes"`
	// Per client address (login protection): 0 turns the address lockout off.
	IPMaxFailedLogins int `json:"ipMaxFailedLogins"`
	IPLockoutMinutes  int `json:"ipLockoutMinutes"`
	// ProgressiveLockout: doubling delays (1 s, 2 s, …) instead of one lock.
	ProgressiveLockout bool `json:"progressiveLockout"`

	EnableGeofencing bool     `json:"enableGeofencing"`
	AllowedCountries []string `json:"allowedCountries"`
	BlockedCountries []string `json:"blockedCountries"`
	BlockTor         bool     `json:"blockTor"`
	BlockVpn         bool     `json:"blockVpn"`
	BlockDatacenter  bool     `json:"blockDatacenter"`

	EnableEmailAlerts      bool     `json:"enableEmailAlerts"`
	AlertOnSuspiciousLogin bool     `json:"alertOnSuspiciousLogin"`
	AlertOnNewLocation     bool     `json:"alertOnNewLocation"`
	AlertOnVpnProxy        bool     `json:"alertOnVpnProxy"`
	AlertRecipients        []string `json:"alertRecipients"` // the operators' addresses: email alerts never go to the user
	SMTP                   SMTP     `json:"smtp"`

	EnableWebhooks    bool      `json:"enableWebhooks"`
	DiscordWebhookURL string    `json:"discordWebhookUrl"` // secret
	SlackWebhookURL   string    `json:"slackWebhookUrl"`   // secret
	Webhooks          []Webhook `json:"webhooks"`

	EmailTemplates map[string]EmailTemplate `json:"emailTemplates"`

	// Settings the Strapi plugin's admin UI sends (apply.go says which
	// take effect here).
	SessionCreationGraceMs   int    `json:"sessionCreationGraceMs"` // current-session answers 202 pending this long after a token's iat
	CleanupUseDbDirect       bool   `json:"cleanupUseDbDirect"`     // accepted, no effect: cleanup is always one SQL statement
	RateLimitWriteMax        int    `json:"rateLimitWriteMax"`      // user API writes per window per user (can only tighten 10)
	RateLimitReadMax         int    `json:"rateLimitReadMax"`       // user API reads per window per user (can only raise 120)
	RateLimitWindowSeconds   int    `json:"rateLimitWindowSeconds"`
	GeoIPProvider            string `json:"geoIpProvider"`            // accepted; only the local mmdb exists here
	GeoIPDatabasePath        string `json:"geoIpDatabasePath"`        // accepted; the database file is sessionsvc's configuration
	GeoLookupFailureMode     string `json:"geoLookupFailureMode"`     // accepted, no effect
	StrictSessionEnforcement bool   `json:"strictSessionEnforcement"` // accepted, no effect: the proxy always enforces
	TrustedProxies           bool   `json:"trustedProxies"`           // accepted, no effect: the client ip comes from Envoy
}

// Defaults returns the settings used before an admin saved any; the
// inactivity timeout comes from the service configuration.
func Defaults(inactivity time.Duration) Settings {
	mins := int(inactivity / time.Minute)
	if mins <= 0 {
		mins = 15
	}
	return Settings{
		InactivityTimeout:      mins,
		CleanupInterval:        30,
		LastSeenRateLimit:      30,
		RetentionDays:          90,
		MaxSessionAgeDays:      30,
		EnableGeolocation:      true,
		EnableSecurityScoring:  true,
		MinSecurityScore:       30,
		MaxFailedLogins:        5,
		LockoutMinutes:         15,
		IPMaxFailedLogins:      50,
		IPLockoutMinutes:       15,
		AlertOnSuspiciousLogin: true,
		AlertOnNewLocation:     true,
		AlertOnVpnProxy:        true,
		AllowedCountries:       []string{},
		BlockedCountries:       []string{},
		AlertRecipients:        []string{},
		Webhooks:               []Webhook{},
		SMTP:                   SMTP{Port: 587, TLS: "starttls"},
		EmailTemplates:         map[string]EmailTemplate{"suspiciousLogin": {}, "newLocation": {}, "vpnProxy": {}},
		SessionCreationGraceMs: 5000,
		RateLimitWriteMax:      10,
		RateLimitReadMax:       120,
		RateLimitWindowSeconds: 60,
		GeoIPProvider:          "auto",
		GeoLookupFailureMode:   "auto",
	}
}

// InactivityDuration is InactivityTimeout as a duration.
func (s Settings) InactivityDuration() time.Duration {
	return time.Duration(s.InactivityTimeout) * time.Minute
}

// Validate checks ranges and formats; the error names the field.
func (s Settings) Validate() error {
	var errs []string
	bad := func(field, msg string) { errs = append(errs, field+": "+msg) }
	if s.InactivityTimeout < 1 || s.InactivityTimeout > 7*24*60 {
		bad("inactivityTimeout", "must be between 1 and 10080 minutes")
	}
	if s.CleanupInterval < 1 || s.CleanupInterval > 24*60 {
		bad("cleanupInterval", "must be between 1 and 1440 minutes")
	}
	if s.LastSeenRateLimit < 1 || s.LastSeenRateLimit > 3600 {
		bad("lastSeenRateLimit", "must be between 1 and 3600 seconds")
	}
	if s.RetentionDays != -1 && (s.RetentionDays < 1 || s.RetentionDays > 3650) {
		bad("retentionDays", "must be -1 (keep forever) or between 1 and 3650")
	}
	if s.MaxSessionAgeDays < 1 || s.MaxSessionAgeDays > 3650 {
		bad("maxSessionAgeDays", "must be between 1 and 3650")
	}
	if s.MinSecurityScore < 0 || s.MinSecurityScore > 100 {
		bad("minSecurityScore", "must be between 0 and 100")
	}
	if s.MaxFailedLogins < 0 || s.MaxFailedLogins > 1000 {
		bad("maxFailedLogins", "must be between 0 (off) and 1000")
	}
	if s.LockoutMinutes < 0 || s.LockoutMinutes > 7*24*60 {
		bad("lockoutMinutes", "must be between 0 and 10080")
	}
	if s.IPMaxFailedLogins < 0 || s.IPMaxFailedLogins > 100000 {
		bad("ipMaxFailedLogins", "must be between 0 (off) and 100000")
	}
	if s.IPLockoutMinutes < 0 || s.IPLockoutMinutes > 7*24*60 {
		bad("ipLockoutMinutes", "must be between 0 and 10080")
	}
	for _, c := range append(append([]string{}, s.AllowedCountries...), s.BlockedCountries...) {
		if len(c) != 2 || strings.ToUpper(c) != c {
			bad("allowedCountries/blockedCountries", fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 code (e.g. DE)", c))
			break
		}
	}
	for _, a := range s.AlertRecipients {
		if _, err := mail.ParseAddress(a); err != nil {
			bad("alertRecipients", fmt.Sprintf("%q is not an email address", a))
			break
		}
	}
	if s.SMTP.Port < 0 || s.SMTP.Port > 65535 {
		bad("smtp.port", "must be a TCP port")
	}
	switch s.SMTP.TLS {
	case "", "starttls", "tls", "none":
	default:
		bad("smtp.tls", `must be "starttls", "tls" or "none"`)
	}
	if s.SMTP.From != "" {
		if _, err := mail.ParseAddress(s.SMTP.From); err != nil {
			bad("smtp.from", "not an email address")
		}
	}
	// The same allowlist as Apply (upstream's sanitizeWebhookUrl), refused
	// here instead of dropped.
	names := map[string]string{} // channel name -> the field that claims it
	for _, u := range []struct {
		field, v, name string
		hosts          []string
	}{
		{"discordWebhookUrl", s.DiscordWebhookURL, "discord", DiscordHosts},
		{"slackWebhookUrl", s.SlackWebhookURL, "slack", SlackHosts},
	} {
		if u.v == "" {
			continue
		}
		names[u.name] = u.field
		if u.v != Mask && !AllowedWebhookURL(u.v, u.hosts...) {
			bad(u.field, "must be an https URL on "+strings.Join(u.hosts, " or ")+" (or a subdomain)")
		}
	}
	for i, w := range s.Webhooks {
		f := fmt.Sprintf("webhooks[%d]", i)
		if w.Name == "" {
			bad(f+".name", "must be set and unique")
		} else if by, taken := names[w.Name]; taken {
			if strings.HasPrefix(by, "webhooks[") {
				bad(f+".name", "must be set and unique")
			} else {
				bad(f+".name", fmt.Sprintf("%q is the channel of %s; choose another name", w.Name, by))
			}
		} else {
			names[w.Name] = f + ".name"
		}
		if w.URL != Mask && !httpURL(w.URL) {
			bad(f+".url", "must be an http(s) URL")
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Problems: errs}
	}
	return nil
}

// ValidationError lists what is wrong with a settings document.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "invalid settings: " + strings.Join(e.Problems, "; ")
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// secretFields visits every secret field.
func (s *Settings) secretFields(fn func(name string, v *string) error) error {
	if err := fn("smtp.password", &s.SMTP.Password); err != nil {
		return err
	}
	if err := fn("discordWebhookUrl", &s.DiscordWebhookURL); err != nil {
		return err
	}
	if err := fn("slackWebhookUrl", &s.SlackWebhookURL); err != nil {
		return err
	}
	for i := range s.Webhooks {
		if err := fn(fmt.Sprintf("webhooks[%d].url", i), &s.Webhooks[i].URL); err != nil {
			return err
		}
		if err := fn(fmt.Sprintf("webhooks[%d].secret", i), &s.Webhooks[i].Secret); err != nil {
			return err
		}
	}
	return nil
}

// Masked returns a copy with every set secret replaced by Mask.
func (s Settings) Masked() Settings {
	c := s.clone()
	_ = c.secretFields(func(_ string, v *string) error {
		if *v != "" {
			*v = Mask
		}
		return nil
	})
	return c
}

// restoreMasked gives every secret of next sent back as Mask its value in
// current (Masked's inverse); webhooks are matched by name.
func restoreMasked(current Settings, next *Settings) {
	if next.SMTP.Password == Mask {
		next.SMTP.Password = current.SMTP.Password
	}
	if next.DiscordWebhookURL == Mask {
		next.DiscordWebhookURL = current.DiscordWebhookURL
	}
	if next.SlackWebhookURL == Mask {
		next.SlackWebhookURL = current.SlackWebhookURL
	}
	old := map[string]Webhook{}
	for _, w := range current.Webhooks {
		old[w.Name] = w
	}
	for i, w := range next.Webhooks {
		if w.URL == Mask {
			next.Webhooks[i].URL = old[w.Name].URL
		}
		if w.Secret == Mask {
			next.Webhooks[i].Secret = old[w.Name].Secret
		}
	}
}

func (s Settings) clone() Settings {
	b, _ := json.Marshal(s)
	var c Settings
	_ = json.Unmarshal(b, &c)
	return c
}

// ErrNoEncryptionKey: a secret was set but SESSION_ENCRYPTION_KEY is not configured.
var ErrNoEncryptionKey = errors.New("storing secrets needs SESSION_ENCRYPTION_KEY")

// Load reads the document from st over the defaults and opens sealed secrets.
func Load(ctx context.Context, st store.Settings, kr *secrets.Keyring, inactivity time.Duration) (Settings, error) {
	s := Defaults(inactivity)
	doc, err := st.GetSettings(ctx)
	if err != nil {
		return Settings{}, fmt.Errorf("load settings: %w", err)
	}
	if doc == nil {
		return s, nil
	}
	if err := json.Unmarshal(doc, &s); err != nil {
		return Settings{}, fmt.Errorf("load settings: stored document: %w", err)
	}
	err = s.secretFields(func(name string, v *string) error {
		if !secrets.IsSealed(*v) {
			return nil
		}
		pt, err := kr.Open(*v)
		if err != nil {
			return fmt.Errorf("load settings: %s: %w", name, err)
		}
		*v = pt
		return nil
	})
	if err != nil {
		return Settings{}, err
	}
	return s, nil
}

// Merge decodes an admin's JSON body over current (fields left out keep
// their value; a secret sent back as Mask keeps its value). Unknown fields
// are an error.
func Merge(current Settings, body []byte) (Settings, error) {
	next := current.clone()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&next); err != nil {
		return Settings{}, err
	}
	if dec.More() {
		return Settings{}, errors.New("unexpected data after the JSON document")
	}
	restoreMasked(current, &next)
	if next.AllowedCountries == nil {
		next.AllowedCountries = []string{}
	}
	if next.BlockedCountries == nil {
		next.BlockedCountries = []string{}
	}
	return next, nil
}

// Save validates s, seals its secrets and stores it.
func Save(ctx context.Context, st store.Settings, kr *secrets.Keyring, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	sealed := s.clone()
	err := sealed.secretFields(func(name string, v *string) error {
		if *v == "" {
			return nil
		}
		if !kr.Enabled() {
			return fmt.Errorf("%s: %w", name, ErrNoEncryptionKey)
		}
		out, err := kr.Seal(*v)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		*v = out
		return nil
	})
	if err != nil {
		return err
	}
	doc, err := json.Marshal(sealed)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if err := st.PutSettings(ctx, doc); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}
