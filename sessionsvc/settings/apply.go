package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Apply turns a settings body as the Strapi plugin's admin UI sends it
// (PUT /magic-sessionmanager/settings, controllers/settings.js) into the
// next settings, the way upstream does:
//
//   - the plugin's own keys are replaced, not merged: a key left out takes
//     upstream's value for "absent" (false for switches, the default for
//     numbers, "" for webhook URLs, [] for lists);
//   - numbers are read leniently (15, "15", 15.7) and clamped to upstream's
//     ranges, never refused;
//   - webhook URLs that are not https on Discord's or Slack's hosts become "";
//   - country lists keep the valid ISO codes only, upper-cased;
//   - unknown keys are ignored (listed in the second result).
//
// Keys only sessionsvc has (smtp, webhooks, alertRecipients,
// minSecurityScore, lockoutMinutes, blockTor, …: every other field of
// Settings) keep their current value when left out, so the plugin's UI, which does
// not know them, cannot wipe them; when sent they are decoded strictly.
// A secret sent back as Mask keeps its value.
func Apply(current Settings, body []byte) (Settings, []string, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return Settings{}, nil, fmt.Errorf("settings body must be a JSON object: %w", err)
	}
	if in == nil {
		return Settings{}, nil, fmt.Errorf("settings body must be a JSON object")
	}
	next := current.clone()

	num := func(key string, def, lo, hi int) int {
		n, ok := lenientInt(in[key])
		if !ok {
			n = def
		}
		return min(max(n, lo), hi)
	}
	// Upstream uses `parseInt(x) || default`: 0 falls back to the default
	// except where it says otherwise (grace, retention, maxFailedLogins).
	orDef := func(key string, def, lo, hi int) int {
		n, ok := lenientInt(in[key])
		if !ok || n == 0 {
			n = def
		}
		return min(max(n, lo), hi)
	}
	next.InactivityTimeout = orDef("inactivityTimeout", 15, 1, 1440)
	next.CleanupInterval = orDef("cleanupInterval", 30, 5, 1440)
	next.LastSeenRateLimit = orDef("lastSeenRateLimit", 30, 5, 300)
	if n, ok := lenientInt(in["retentionDays"]); !ok {
		next.RetentionDays = 90
	} else if n == -1 {
		next.RetentionDays = -1
	} else {
		next.RetentionDays = min(max(n, 1), 365)
	}
	next.MaxSessionAgeDays = orDef("maxSessionAgeDays", 30, 1, 365)
	if _, sent := in["sessionCreationGraceMs"]; sent {
		next.SessionCreationGraceMs = num("sessionCreationGraceMs", 5000, 0, 30000)
	} else {
		next.SessionCreationGraceMs = 5000
	}
	next.CleanupUseDbDirect = truthy(in["cleanupUseDbDirect"])
	next.RateLimitWriteMax = orDef("rateLimitWriteMax", 10, 1, 1000)
	next.RateLimitReadMax = orDef("rateLimitReadMax", 120, 1, 10000)
	next.RateLimitWindowSeconds = orDef("rateLimitWindowSeconds", 60, 10, 3600)

	next.EnableGeolocation = truthy(in["enableGeolocation"])
	next.EnableSecurityScoring = truthy(in["enableSecurityScoring"])
	next.BlockSuspiciousSessions = truthy(in["blockSuspiciousSessions"])
	if _, ok := lenientInt(in["maxFailedLogins"]); ok {
		next.MaxFailedLogins = num("maxFailedLogins", 5, 0, 100)
	} else {
		next.MaxFailedLogins = 5
	}
	next.EnableGeofencing = truthy(in["enableGeofencing"])
	next.AllowedCountries = countryList(in["allowedCountries"])
	next.BlockedCountries = countryList(in["blockedCountries"])
	next.GeoIPProvider = oneOf(in["geoIpProvider"], "auto", "auto", "local-mmdb", "ipapi", "disabled")
	next.GeoIPDatabasePath = ""
	if s, ok := str(in["geoIpDatabasePath"]); ok {
		next.GeoIPDatabasePath = truncate(strings.TrimSpace(strings.ReplaceAll(s, "\x00", "")), 1024)
	}
	next.GeoLookupFailureMode = oneOf(in["geoLookupFailureMode"], "auto", "auto", "allow", "block")

	next.EnableEmailAlerts = truthy(in["enableEmailAlerts"])
	next.AlertOnSuspiciousLogin = truthy(in["alertOnSuspiciousLogin"])
	next.AlertOnNewLocation = truthy(in["alertOnNewLocation"])
	next.AlertOnVpnProxy = truthy(in["alertOnVpnProxy"])
	next.EnableWebhooks = truthy(in["enableWebhooks"])
	next.DiscordWebhookURL = webhookURL(in["discordWebhookUrl"], current.DiscordWebhookURL, DiscordHosts...)
	next.SlackWebhookURL = webhookURL(in["slackWebhookUrl"], current.SlackWebhookURL, SlackHosts...)
	next.StrictSessionEnforcement = truthy(in["strictSessionEnforcement"])
	next.TrustedProxies = truthy(in["trustedProxies"])
	next.EmailTemplates = emailTemplates(in["emailTemplates"])

	// sessionsvc's own keys (every other field of Settings): strict when
	// sent, kept when not.
	var ignored []string
	nv := reflect.ValueOf(&next).Elem()
	for k, raw := range in {
		if knownKeys[k] {
			continue
		}
		i, own := ownFields[k]
		if !own {
			ignored = append(ignored, k)
			continue
		}
		if err := decodeStrict(raw, nv.Field(i).Addr().Interface()); err != nil {
			return Settings{}, nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	slices.Sort(ignored)
	restoreMasked(current, &next)
	if next.AlertRecipients == nil {
		next.AlertRecipients = []string{}
	}
	if next.Webhooks == nil {
		next.Webhooks = []Webhook{}
	}
	return next, ignored, nil
}

// NoEffect lists the plugin's settings sessionsvc stores and shows but
// that change nothing here (the README's compatibility table says why).
var NoEffect = []string{"cleanupInterval", "cleanupUseDbDirect", "geoIpDatabasePath", "geoIpProvider", "geoLookupFailureMode",
	"lastSeenRateLimit", "maxSessionAgeDays", "retentionDays", "strictSessionEnforcement", "trustedProxies"}

// knownKeys are the plugin's keys Apply reads.
var knownKeys = map[string]bool{}

// ownFields maps the JSON names of sessionsvc's own settings (the fields
// of Settings the plugin does not have) to their field index.
var ownFields = map[string]int{}

func init() {
	for _, k := range []string{"inactivityTimeout", "cleanupInterval", "lastSeenRateLimit", "retentionDays", "maxSessionAgeDays",
		"sessionCreationGraceMs", "cleanupUseDbDirect", "rateLimitWriteMax", "rateLimitReadMax", "rateLimitWindowSeconds",
		"enableGeolocation", "enableSecurityScoring", "blockSuspiciousSessions", "maxFailedLogins", "enableGeofencing",
		"allowedCountries", "blockedCountries", "geoIpProvider", "geoIpDatabasePath", "geoLookupFailureMode",
		"enableEmailAlerts", "alertOnSuspiciousLogin", "alertOnNewLocation", "alertOnVpnProxy", "enableWebhooks",
		"discordWebhookUrl", "slackWebhookUrl", "strictSessionEnforcement", "trustedProxies", "emailTemplates"} {
		knownKeys[k] = true
	}
	t := reflect.TypeOf(Settings{})
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && !knownKeys[name] {
			ownFields[name] = i
		}
	}
}

func decodeStrict(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	// Say what was expected in the settings' own words, not Go's types.
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Int: "a whole number",
			reflect.String: "a string", reflect.Slice: "a list", reflect.Struct: "an object", reflect.Map: "an object"}[te.Type.Kind()]
		if want == "" {
			want = "of another type"
		}
		at := ""
		if te.Field != "" {
			at = " (" + te.Field + ")"
		}
		return fmt.Errorf("must be %s%s, got %s", want, at, te.Value)
	}
	return err
}

// lenientInt reads a number as JavaScript's parseInt would: 15, 15.7,
// "15", " 15px" all give 15; anything else is not a number.
func lenientInt(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		return clampInt(math.Trunc(f)), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, false
	}
	s = strings.TrimSpace(s)
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	digits := end
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == digits {
		return 0, false
	}
	n, err := strconv.ParseFloat(s[:end], 64)
	if err != nil {
		return 0, false
	}
	return clampInt(n), true
}

func clampInt(f float64) int {
	const lim = 1 << 40
	return int(min(max(f, -lim), lim))
}

// truthy is JavaScript's !!x for a JSON value.
func truthy(raw json.RawMessage) bool {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	default:
		return true // objects and arrays
	}
}

func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func oneOf(raw json.RawMessage, def string, allowed ...string) string {
	if s, ok := str(raw); ok && slices.Contains(allowed, s) {
		return s
	}
	return def
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

var countryRe = regexp.MustCompile(`^[A-Z]{2}$`)

func countryList(raw json.RawMessage) []string {
	var list []any
	out := []string{}
	if len(raw) == 0 || json.Unmarshal(raw, &list) != nil {
		return out
	}
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			continue
		}
		s = strings.ToUpper(strings.TrimSpace(s))
		if countryRe.MatchString(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// The hosts (and their subdomains) the Discord and Slack webhook URLs
// may point at, on both settings paths.
var (
	DiscordHosts = []string{"discord.com", "discordapp.com"}
	SlackHosts   = []string{"hooks.slack.com"}
)

// webhookURL keeps an https URL on one of hosts (or a subdomain); anything
// else is "" (upstream's sanitizeWebhookUrl). Mask keeps current when it
// is allowed (one stored before the allowlist applied to every path is
// dropped too).
func webhookURL(raw json.RawMessage, current string, hosts ...string) string {
	s, ok := str(raw)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	if s == Mask {
		s = current
	}
	if !AllowedWebhookURL(s, hosts...) {
		return ""
	}
	return s
}

// AllowedWebhookURL reports whether s is an https URL on one of hosts or a
// subdomain of one (no user info, no other port than 443).
func AllowedWebhookURL(s string, hosts ...string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" {
		return false
	}
	if p := u.Port(); p != "" && p != "443" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, d := range hosts {
		if h == d || strings.HasSuffix(h, "."+d) {
			return true
		}
	}
	return false
}

// Upstream's template keys and limits.
var templateKeys = []string{"suspiciousLogin", "newLocation", "vpnProxy"}

// dangerousHTML and friends strip what must never reach a mail client from
// a stored template (upstream's fallback sanitizer; its sanitize-html
// allowlist is stricter when installed).
var (
	dangerousTags  = regexp.MustCompile(`(?i)<\s*/?\s*(script|iframe|object|embed|form|input|button|link|meta|base|svg|math|style)\b[^>]*>`)
	dangerousAttrs = regexp.MustCompile(`(?i)\son[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)`)
	scriptScheme   = regexp.MustCompile(`(?i)(?:href|src)\s*=\s*["']?\s*(?:javascript|data|vbscript)\s*:[^"'>\s]*["']?`)
)

// SanitizeHTML removes script-capable markup from a template.
func SanitizeHTML(s string) string {
	for range 8 {
		out := scriptScheme.ReplaceAllString(dangerousAttrs.ReplaceAllString(dangerousTags.ReplaceAllString(s, ""), ""), "")
		if out == s {
			return out
		}
		s = out // removing one tag can join the halves of another
	}
	// Still changing: nested on purpose. Keep it as text.
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

func emailTemplates(raw json.RawMessage) map[string]EmailTemplate {
	out := make(map[string]EmailTemplate, len(templateKeys))
	var in map[string]json.RawMessage
	_ = json.Unmarshal(raw, &in)
	for _, k := range templateKeys {
		var t struct {
			Subject, HTML, Text any
		}
		_ = json.Unmarshal(in[k], &t)
		s, _ := t.Subject.(string)
		h, _ := t.HTML.(string)
		x, _ := t.Text.(string)
		out[k] = EmailTemplate{Subject: truncate(s, 200), HTML: SanitizeHTML(truncate(h, 10000)), Text: truncate(x, 5000)}
	}
	// sessionsvc's templates keyed by event ("login.suspicious", …) are
	// replaced the same way.
	for k, raw := range in {
		if !strings.Contains(k, ".") || len(k) > 64 {
			continue
		}
		var t EmailTemplate
		if json.Unmarshal(raw, &t) == nil {
			out[k] = EmailTemplate{Subject: truncate(t.Subject, 200), HTML: SanitizeHTML(truncate(t.HTML, 10000)), Text: truncate(t.Text, 5000)}
		}
	}
	return out
}
