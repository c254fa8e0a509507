// Package lockout is sessionsvc's login protection: failed logins counted
// per identifier (the login name the user typed, normalised) and per client
// address, each against its own threshold and window, in the database
// (store.LoginCounters: one atomic upsert per failure, so any number of
// replicas agree exactly); the lock those counts set, checked on the login
// request before the app sees the password; the admin list and unlock; and
// an audit event, with optional alerts, for every lock and unlock.
package lockout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/enrich/policy"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Scope prefixes of the counters.
const (
	PrefixIdentifier = "ident:"
	PrefixIP         = "ip:"
)

// MaxIdentifierLen bounds a normalised identifier (bytes). Longer ones keep
// a prefix and a digest of the whole, so distinct huge identifiers stay
// distinct and a counter's key stays small.
const MaxIdentifierLen = 128

// Message is the answer to a locked login (the Strapi plugin's 429 wording).
const Message = "Too many requests. Please try again later."

// NormalizeIdentifier is the form an identifier is counted under: valid
// UTF-8, trimmed, case-folded, at most MaxIdentifierLen bytes. A missing
// identifier is "" (all logins without one share that counter).
func NormalizeIdentifier(raw string) string {
	s := strings.ToValidUTF8(raw, "\uFFFD")
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) <= MaxIdentifierLen {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	tail := "#" + hex.EncodeToString(sum[:12]) // 25 bytes
	cut := MaxIdentifierLen - len(tail)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}

// Subject is what a counter counts: an identifier or an address.
type Subject struct {
	Kind  string // store.CounterIdentifier or store.CounterIP
	Value string // normalised identifier, address, or IPv6 /64
	Scope string // PrefixIdentifier+Value or PrefixIP+Value
}

// IdentifierSubject is the counter of a raw identifier.
func IdentifierSubject(raw string) Subject {
	v := NormalizeIdentifier(raw)
	return Subject{Kind: store.CounterIdentifier, Value: v, Scope: PrefixIdentifier + v}
}

// IPSubject is the counter of an address: IPv4 (or IPv4-mapped) as is,
// IPv6 per /64 (one subscriber's network: rotating addresses within it
// would dodge the lockout). ok is false for anything that is not an address.
func IPSubject(ip string) (Subject, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return Subject{}, false
	}
	a = a.WithZone("")
	var v string
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		v = p.String()
	} else {
		v = a.String()
	}
	return Subject{Kind: store.CounterIP, Value: v, Scope: PrefixIP + v}, true
}

// ParseSubject reads an admin's {kind, value} (value normalised as the
// counters are) or a counter's scope.
func ParseSubject(kind, value string) (Subject, error) {
	switch kind {
	case store.CounterIdentifier:
		return IdentifierSubject(value), nil
	case store.CounterIP:
		if s, ok := IPSubject(value); ok {
			return s, nil
		}
		if p, err := netip.ParsePrefix(value); err == nil && p.Addr().Is6() && p.Bits() == 64 {
			return Subject{Kind: store.CounterIP, Value: p.Masked().String(), Scope: PrefixIP + p.Masked().String()}, nil
		}
		return Subject{}, fmt.Errorf("%q is not an IP address (or an IPv6 /64)", truncate(value, 64))
	case "scope", "":
		switch {
		case strings.HasPrefix(value, PrefixIdentifier):
			return ParseSubject(store.CounterIdentifier, value[len(PrefixIdentifier):])
		case strings.HasPrefix(value, PrefixIP):
			return ParseSubject(store.CounterIP, value[len(PrefixIP):])
		}
		return Subject{}, fmt.Errorf("scope %q must start with %q or %q", truncate(value, 64), PrefixIdentifier, PrefixIP)
	}
	return Subject{}, fmt.Errorf("type %q must be %q or %q", truncate(kind, 32), store.CounterIdentifier, store.CounterIP)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Attempt is one login as the filter saw its request.
type Attempt struct {
	IP         string
	Identifier string
	// HasIdentifier: Identifier was read (possibly empty, i.e. missing,
	// which is counted too). False when the caller could not know it (an
	// older filter): no identifier counter is involved.
	HasIdentifier bool
}

// Lock is the answer of Check, Begin and Failure.
type Lock struct {
	Locked bool
	Kind   string    // which counter locks (store.CounterIdentifier or store.CounterIP)
	Until  time.Time // the latest end among the locked counters
	// Busy: not locked, but as many attempts as the threshold allows are
	// already on their way to the app (Begin); Until is a second away.
	Busy bool
}

// RetryAfter is the whole seconds until the lock ends, at least 1.
func (l Lock) RetryAfter(now time.Time) int {
	d := l.Until.Sub(now)
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// Config configures a Guard.
type Config struct {
	// Policy returns the current lockout policy (read on every call).
	Policy func() policy.Policy
	// AlertChannels returns the channels an event is written for; nil = no alerts.
	AlertChannels func(event string) []string
	Logger        *slog.Logger
}

// Guard counts failures and decides lockouts. Safe for concurrent use.
type Guard struct {
	st  store.LoginCounters
	cfg Config
	log *slog.Logger
}

// New returns a guard over st.
func New(st store.LoginCounters, cfg Config) *Guard {
	if cfg.Policy == nil {
		def := policy.Default()
		cfg.Policy = func() policy.Policy { return def }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{st: st, cfg: cfg, log: cfg.Logger.With("component", "lockout")}
}

// counted is a subject with the threshold, window and duration that apply.
type counted struct {
	Subject
	threshold       int
	window, lockFor time.Duration
}

// attempt is the store's record of an attempt on s at now.
func (s counted) attempt(now time.Time, progressive bool) store.LoginAttempt {
	return store.LoginAttempt{Scope: s.Scope, Kind: s.Kind, Subject: s.Value, At: now,
		Threshold: s.threshold, Window: s.window, Progressive: progressive}
}

func (g *Guard) subjects(l policy.Lockout, a Attempt) []counted {
	var out []counted
	if l.ByIP() {
		if s, ok := IPSubject(a.IP); ok {
			out = append(out, counted{s, l.IPMaxFailures, l.IPWindow(), l.IPDuration()})
		}
	}
	if l.ByIdentifier() && a.HasIdentifier {
		out = append(out, counted{IdentifierSubject(a.Identifier), l.MaxFailures, l.Window(), l.Duration()})
	}
	return out
}

// Check says whether the attempt is locked out (by its address or its
// identifier). It reads one indexed query.
func (g *Guard) Check(ctx context.Context, a Attempt, now time.Time) (Lock, error) {
	subs := g.subjects(g.cfg.Policy().Lockout, a)
	if len(subs) == 0 {
		return Lock{}, nil
	}
	scopes := make([]string, len(subs))
	for i, s := range subs {
		scopes[i] = s.Scope
	}
	locked, err := g.st.ActiveLockouts(ctx, scopes, now)
	if err != nil {
		return Lock{}, fmt.Errorf("lockout check: %w", err)
	}
	var out Lock
	for _, c := range locked {
		if !out.Locked || c.LockedUntil.After(out.Until) {
			out = Lock{Locked: true, Kind: c.Kind, Until: c.LockedUntil}
		}
	}
	return out, nil
}

// Begin is the pre-login check: it admits the attempt (taking a pending
// slot under its address and identifier, freed by its failure report, its
// success, or store.PendingTTL) or refuses it, recording nothing, when a
// counter is locked or its failures plus the attempts already admitted
// reach its threshold. So concurrent attempts never get more guesses to
// the app than the threshold.
func (g *Guard) Begin(ctx context.Context, a Attempt, now time.Time) (Lock, error) {
	p := g.cfg.Policy()
	subs := g.subjects(p.Lockout, a)
	if len(subs) == 0 {
		return Lock{}, nil
	}
	as := make([]store.LoginAttempt, len(subs))
	for i, s := range subs {
		as[i] = s.attempt(now, p.Lockout.Progressive)
	}
	ok, counters, err := g.st.BeginLoginAttempts(ctx, as)
	if err != nil {
		return Lock{}, fmt.Errorf("lockout check: %w", err)
	}
	if ok {
		return Lock{}, nil
	}
	var out Lock
	for _, c := range counters {
		if c.Locked(now) && (!out.Locked || out.Busy || c.LockedUntil.After(out.Until)) {
			out = Lock{Locked: true, Kind: c.Kind, Until: c.LockedUntil}
		}
	}
	if !out.Locked {
		for _, c := range counters {
			if !c.CheckOK {
				out = Lock{Locked: true, Busy: true, Kind: c.Kind, Until: now.Add(time.Second)}
				break
			}
		}
	}
	return out, nil
}

// Failure counts a failed login under its address and identifier and says
// whether either is now locked. The failure that reaches a threshold
// writes the lock's audit event and alerts in its transaction.
func (g *Guard) Failure(ctx context.Context, a Attempt, now time.Time) (Lock, error) {
	p := g.cfg.Policy()
	subs := g.subjects(p.Lockout, a)
	fs := make([]store.LoginFailure, len(subs))
	windows := map[string]time.Duration{}
	for i, s := range subs {
		fs[i] = store.LoginFailure{LoginAttempt: s.attempt(now, p.Lockout.Progressive), LockFor: s.lockFor}
		windows[s.Scope] = s.window
	}
	// The failure also feeds the dashboard's refusals chart (per address)
	// and its refused logins by reason.
	var event string
	if s, ok := IPSubject(a.IP); ok {
		event = s.Scope
	}
	if len(fs) == 0 {
		// Nothing counts failures (lockout off): the failure is still a
		// refused login for the dashboard.
		if event != "" {
			g.recordEvent(ctx, event, now)
		}
		return Lock{}, nil
	}
	counters, err := g.st.RecordLoginFailures(ctx, fs, event, func(c store.LoginCounter) ([]store.AuditEvent, []store.Alert) {
		return g.lockEvents(p, c, a, windows[c.Scope])
	})
	if err != nil {
		return Lock{}, fmt.Errorf("count failed login: %w", err)
	}
	var out Lock
	for _, c := range counters {
		if c.JustLocked {
			g.log.Warn("login locked out after repeated failures", "kind", c.Kind, "subject", c.Subject,
				"failures", c.Failures, "until", c.LockedUntil)
		}
		if c.Locked(now) && (!out.Locked || c.LockedUntil.After(out.Until)) {
			out = Lock{Locked: true, Kind: c.Kind, Until: c.LockedUntil}
		}
	}
	return out, nil
}

// recordEvent records a failure that no counter takes (lockout off) for
// the dashboard, as RecordLoginFailures does with its event scope: in
// failed_logins (the overview) and as a refused login (the analytics),
// when the store keeps them. Best effort: a failure is logged.
func (g *Guard) recordEvent(ctx context.Context, event string, now time.Time) {
	if fl, ok := g.st.(store.FailedLogins); ok {
		if _, err := fl.RecordFailedLogin(ctx, event, now, 24*time.Hour); err != nil {
			g.log.Warn("recording a failed login for the dashboard failed", "err", err)
		}
	}
	if lr, ok := g.st.(store.LoginRefusals); ok {
		if err := lr.RecordLoginRefusal(ctx, store.RefusalCredentials, now); err != nil {
			g.log.Warn("recording a refused login failed", "err", err)
		}
	}
}

// Success forgets the identifier's failures (not while it is locked) and
// frees the address's pending slot.
func (g *Guard) Success(ctx context.Context, a Attempt, now time.Time) error {
	l := g.cfg.Policy().Lockout
	if l.ByIdentifier() && a.HasIdentifier {
		if err := g.st.ResetLoginFailures(ctx, IdentifierSubject(a.Identifier).Scope, now); err != nil {
			return fmt.Errorf("reset failed logins: %w", err)
		}
	}
	if s, ok := IPSubject(a.IP); ok && l.ByIP() {
		if err := g.st.ReleaseLoginAttempt(ctx, s.Scope, now); err != nil {
			return fmt.Errorf("release login attempt: %w", err)
		}
	}
	return nil
}

// List returns the lockouts in force at now.
func (g *Guard) List(ctx context.Context, now time.Time, limit int) ([]store.LoginCounter, error) {
	return g.st.ListLockouts(ctx, now, limit)
}

// Unlock lifts a lockout (store.ErrNotFound when s is not locked) and
// records who did it.
func (g *Guard) Unlock(ctx context.Context, s Subject, actor string, now time.Time) (store.LoginCounter, error) {
	p := g.cfg.Policy()
	detail, _ := json.Marshal(map[string]any{"scope": s.Scope})
	audit := []store.AuditEvent{{At: now, Event: store.AuditLockoutUnlocked, SubjectKind: s.Kind, Subject: s.Value,
		Actor: actor, Detail: detail}}
	var alerts []store.Alert
	if ch := g.channels(p, alert.EventLoginUnlocked); len(ch) > 0 {
		pl := subjectPayload(alert.EventLoginUnlocked, s.Kind, s.Value, now)
		pl.Reason = "unlocked by " + actor
		alerts, _ = alert.NewAlerts(pl, ch, now)
	}
	c, err := g.st.Unlock(ctx, s.Scope, now, audit, alerts)
	if err != nil {
		return store.LoginCounter{}, fmt.Errorf("unlock %s: %w", s.Kind, err)
	}
	g.log.Info("lockout lifted", "kind", s.Kind, "subject", s.Value, "by", actor)
	return c, nil
}

func (g *Guard) channels(p policy.Policy, event string) []string {
	if g.cfg.AlertChannels == nil || !p.Alerts.Raises(event) {
		return nil
	}
	return g.cfg.AlertChannels(event)
}

func subjectPayload(event, kind, value string, at time.Time) alert.Payload {
	pl := alert.Payload{Event: event, At: at}
	if kind == store.CounterIP {
		pl.IP = value
	} else {
		pl.UserID = value
	}
	return pl
}

func (g *Guard) lockEvents(p policy.Policy, c store.LoginCounter, a Attempt, window time.Duration) ([]store.AuditEvent, []store.Alert) {
	detail, _ := json.Marshal(map[string]any{
		"scope": c.Scope, "failures": c.Failures, "windowMinutes": int(window / time.Minute),
		"lockedUntil": c.LockedUntil.UTC().Format(time.RFC3339), "lastIp": a.IP,
	})
	audit := []store.AuditEvent{{At: c.LockedAt, Event: store.AuditLockoutLocked, SubjectKind: c.Kind, Subject: c.Subject,
		Actor: "system", Detail: detail}}
	var alerts []store.Alert
	if ch := g.channels(p, alert.EventLoginLocked); len(ch) > 0 {
		pl := subjectPayload(alert.EventLoginLocked, c.Kind, c.Subject, c.LockedAt)
		if c.Kind == store.CounterIdentifier {
			pl.IP = a.IP
		}
		pl.Denied = true
		pl.Reason = "locked"
		pl.DenyMessage = fmt.Sprintf("%d failed logins within %d minutes; locked until %s",
			c.Failures, int(window/time.Minute), c.LockedUntil.UTC().Format(time.RFC3339))
		var err error
		if alerts, err = alert.NewAlerts(pl, ch, c.LockedAt); err != nil {
			g.log.Error("building the lockout alert failed", "error", err)
		}
	}
	return audit, alerts
}
