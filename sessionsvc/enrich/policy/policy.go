// Package policy is the login policy: which countries and networks may log
// in, the minimum security score, failed-login lockout, the score weights
// and which alerts are raised. It lives in the admin settings document under
// the "security" key and takes effect without a restart (see Holder and Watch).
package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshsession/meshsession/internal/periodic"
	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/enrich/score"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// SettingsKey is the key of the policy in the admin settings document.
const SettingsKey = "security"

// Policy is the login policy. The zero value is not valid; start from Default.
type Policy struct {
	// AllowedCountries: when not empty, only these ISO 3166-1 alpha-2 codes may log in.
	AllowedCountries []string `json:"allowedCountries"`
	// BlockedCountries may not log in.
	BlockedCountries []string `json:"blockedCountries"`
	// DenyUnknownCountry: with AllowedCountries set, also refuse logins whose
	// country is unknown (no GeoIP database, private or unlisted address).
	DenyUnknownCountry bool `json:"denyUnknownCountry"`

	BlockTor        bool `json:"blockTor"`
	BlockVPN        bool `json:"blockVpn"`
	BlockProxy      bool `json:"blockProxy"`
	BlockThreat     bool `json:"blockThreat"`
	BlockDatacenter bool `json:"blockDatacenter"`

	// DisableGeolocation: do not locate logins (no country rules, no travel signals).
	DisableGeolocation bool `json:"disableGeolocation"`

	// MinScore: logins scoring below are refused (0 = off).
	MinScore int `json:"minScore"`

	Lockout Lockout       `json:"lockout"`
	Score   score.Weights `json:"score"`
	Alerts  Alerts        `json:"alerts"`
}

// Lockout: failed logins are counted per identifier (the login name the
// user typed, normalised) and per client address, each with its own
// threshold and window: MaxFailures failures of one identifier within
// WindowMinutes lock that identifier for LockMinutes; IPMaxFailures
// failures from one address (IPv6: one /64) within IPWindowMinutes lock the
// address for IPLockMinutes. A window starts at its first failure.
type Lockout struct {
	MaxFailures   int  `json:"maxFailures"` // per identifier; 0 = off
	WindowMinutes int  `json:"windowMinutes"`
	LockMinutes   int  `json:"lockMinutes"`
	PerIP         bool `json:"perIp"`
	PerUser       bool `json:"perUser"`
	// Per address (0 = off).
	IPMaxFailures   int `json:"ipMaxFailures"`
	IPWindowMinutes int `json:"ipWindowMinutes"`
	IPLockMinutes   int `json:"ipLockMinutes"`
	// Progressive: instead of one lock for the lock duration, each failure
	// from the threshold on locks for a delay that doubles from 1 s,
	// capped at the lock duration.
	Progressive bool `json:"progressive"`
}

// Window is WindowMinutes as a duration.
func (l Lockout) Window() time.Duration { return time.Duration(l.WindowMinutes) * time.Minute }

// Duration is LockMinutes as a duration.
func (l Lockout) Duration() time.Duration { return time.Duration(l.LockMinutes) * time.Minute }

// IPWindow is IPWindowMinutes as a duration.
func (l Lockout) IPWindow() time.Duration { return time.Duration(l.IPWindowMinutes) * time.Minute }

// IPDuration is IPLockMinutes as a duration.
func (l Lockout) IPDuration() time.Duration { return time.Duration(l.IPLockMinutes) * time.Minute }

// ByIdentifier reports whether failures lock identifiers.
func (l Lockout) ByIdentifier() bool { return l.PerUser && l.MaxFailures > 0 }

// ByIP reports whether failures lock addresses.
func (l Lockout) ByIP() bool { return l.PerIP && l.IPMaxFailures > 0 }

// Enabled reports whether failed logins lock anything.
func (l Lockout) Enabled() bool { return l.ByIdentifier() || l.ByIP() }

// Alerts chooses which alerts are raised.
type Alerts struct {
	// Events raised (alert.Event*). Default: all but login.success.
	Events []string `json:"events"`
	// SuspiciousBelow: a login scoring below this raises login.suspicious.
	SuspiciousBelow int `json:"suspiciousBelow"`
	// TerminatedReasons: session endings that raise session.terminated
	// (protocol.Reason*). Default: manual (an admin) and reuse.
	TerminatedReasons []string `json:"terminatedReasons"`
}

// Raises reports whether event is enabled.
func (a Alerts) Raises(event string) bool { return slices.Contains(a.Events, event) }

// Default is the policy when the settings say nothing: no country or
// network blocked, no minimum score, an identifier locked after 5 failures
// in 15 minutes for 15 minutes, an address after 50 failures in 15 minutes
// for 15 minutes, the default weights, all alerts but login.success.
func Default() Policy {
	return Policy{
		AllowedCountries: []string{},
		BlockedCountries: []string{},
		Lockout: Lockout{MaxFailures: 5, WindowMinutes: 15, LockMinutes: 15, PerIP: true, PerUser: true,
			IPMaxFailures: 50, IPWindowMinutes: 15, IPLockMinutes: 15},
		Score: score.DefaultWeights(),
		Alerts: Alerts{
			Events: []string{
				alert.EventLoginSuspicious, alert.EventLoginNewLocation, alert.EventLoginVPN,
				alert.EventLoginThreat, alert.EventSessionTerminated, alert.EventUserBlocked,
				alert.EventLoginLocked, alert.EventLoginUnlocked,
			},
			SuspiciousBelow:   60,
			TerminatedReasons: []string{protocol.ReasonManual, protocol.ReasonReuse},
		},
	}
}

var reasons = []string{
	protocol.ReasonLogout, protocol.ReasonManual, protocol.ReasonIdle, protocol.ReasonExpired,
	protocol.ReasonBlocked, protocol.ReasonReuse, protocol.ReasonNotBefore, protocol.ReasonPolicy,
}

// Normalize upper-cases and de-duplicates country codes and events.
func (p *Policy) Normalize() {
	p.AllowedCountries = normCountries(p.AllowedCountries)
	p.BlockedCountries = normCountries(p.BlockedCountries)
	p.Alerts.Events = dedupe(p.Alerts.Events)
	p.Alerts.TerminatedReasons = dedupe(p.Alerts.TerminatedReasons)
}

func normCountries(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		out = append(out, strings.ToUpper(strings.TrimSpace(c)))
	}
	return dedupe(out)
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Validate says which field is wrong, spelled as in the settings JSON.
func (p Policy) Validate() error {
	var errs []error
	for _, list := range []struct {
		name  string
		codes []string
	}{{"allowedCountries", p.AllowedCountries}, {"blockedCountries", p.BlockedCountries}} {
		for _, c := range list.codes {
			if !isCountryCode(c) {
				errs = append(errs, fmt.Errorf("%s: %q is not a two-letter ISO 3166-1 country code", list.name, c))
			}
		}
	}
	for _, c := range p.AllowedCountries {
		if slices.Contains(p.BlockedCountries, c) {
			errs = append(errs, fmt.Errorf("allowedCountries and blockedCountries both list %q", c))
		}
	}
	within := func(field string, v, lo, hi int, note string) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s: %d is outside %d..%d%s", field, v, lo, hi, note))
		}
	}
	const week = 7 * 24 * 60 // minutes
	within("minScore", p.MinScore, 0, 100, "")
	l := p.Lockout
	within("lockout.maxFailures", l.MaxFailures, 0, 1000, " (0 turns lockout off)")
	if l.MaxFailures > 0 {
		within("lockout.windowMinutes", l.WindowMinutes, 1, week, "")
		within("lockout.lockMinutes", l.LockMinutes, 1, week, "")
	}
	within("lockout.ipMaxFailures", l.IPMaxFailures, 0, 100000, " (0 turns the address lockout off)")
	if l.IPMaxFailures > 0 {
		within("lockout.ipWindowMinutes", l.IPWindowMinutes, 1, week, "")
		within("lockout.ipLockMinutes", l.IPLockMinutes, 1, week, "")
	}
	if err := p.Score.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, e := range p.Alerts.Events {
		if !alert.KnownEvent(e) {
			errs = append(errs, fmt.Errorf("alerts.events: unknown event %q (known: %s)", e, strings.Join(alert.Events, ", ")))
		}
	}
	if p.Alerts.SuspiciousBelow < 0 || p.Alerts.SuspiciousBelow > 100 {
		errs = append(errs, fmt.Errorf("alerts.suspiciousBelow: %d is outside 0..100", p.Alerts.SuspiciousBelow))
	}
	for _, r := range p.Alerts.TerminatedReasons {
		if !slices.Contains(reasons, r) {
			errs = append(errs, fmt.Errorf("alerts.terminatedReasons: unknown reason %q (known: %s)", r, strings.Join(reasons, ", ")))
		}
	}
	return errors.Join(errs...)
}

func isCountryCode(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

// Parse reads a policy document (the value of "security"): fields left out
// keep their defaults, unknown fields are an error, and the result is
// normalised and validated. An empty or null document is Default().
func Parse(doc []byte) (Policy, error) { return ParseOver(Default(), doc) }

// ParseOver is Parse starting from base instead of Default(): fields the
// document leaves out keep base's values (base is not modified).
func ParseOver(base Policy, doc []byte) (Policy, error) {
	p := base.clone()
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 || bytes.Equal(doc, []byte("null")) {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("security settings: %w", err)
	}
	if dec.More() {
		return Policy{}, errors.New("security settings: trailing data after the JSON object")
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("security settings: %w", err)
	}
	return p, nil
}

// clone copies p so that decoding into the copy never writes into p's slices.
func (p Policy) clone() Policy {
	c := p
	c.AllowedCountries = slices.Clone(p.AllowedCountries)
	c.BlockedCountries = slices.Clone(p.BlockedCountries)
	c.Alerts.Events = slices.Clone(p.Alerts.Events)
	c.Alerts.TerminatedReasons = slices.Clone(p.Alerts.TerminatedReasons)
	return c
}

// SecurityDocument returns the "security" value of a whole settings
// document (nil when absent).
func SecurityDocument(settings json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(settings)) == 0 {
		return nil, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(settings, &doc); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return doc[SettingsKey], nil
}

// FromSettings reads the policy from the whole admin settings document
// ({"security": {...}, ...}); other keys are ignored. No document or no
// "security" key is Default().
func FromSettings(settings json.RawMessage) (Policy, error) {
	sec, err := SecurityDocument(settings)
	if err != nil {
		return Policy{}, err
	}
	return Parse(sec)
}

// Holder holds the current policy; Get is what enrich.Config.Policy wants.
// Safe for concurrent use.
type Holder struct {
	p atomic.Pointer[Policy]
}

// NewHolder starts with p (Default() if p is nil).
func NewHolder(p *Policy) *Holder {
	h := &Holder{}
	if p == nil {
		d := Default()
		p = &d
	}
	h.p.Store(p)
	return h
}

// Get returns the current policy. Callers must not modify its slices.
func (h *Holder) Get() Policy { return *h.p.Load() }

// Set validates p and makes it current.
func (h *Holder) Set(p Policy) error {
	p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	h.p.Store(&p)
	return nil
}

// Load reads the policy from the store's settings and makes it current.
func (h *Holder) Load(ctx context.Context, st store.Settings) error {
	doc, err := st.GetSettings(ctx)
	if err != nil {
		return fmt.Errorf("load security settings: %w", err)
	}
	p, err := FromSettings(doc)
	if err != nil {
		return err
	}
	h.p.Store(&p)
	return nil
}

// Watch reloads the policy from the store every interval until ctx is done,
// so a change saved through another replica takes effect here too. An
// invalid document is logged and the current policy kept.
func (h *Holder) Watch(ctx context.Context, st store.Settings, interval time.Duration, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	var lastErr string
	periodic.Run(ctx, interval, func(ctx context.Context) {
		err := h.Load(ctx, st)
		switch {
		case err != nil && err.Error() != lastErr:
			logger.Warn("security policy not reloaded; keeping the current one", "error", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	})
}
