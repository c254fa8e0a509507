package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/enrich/policy"
	"github.com/meshsession/meshsession/sessionsvc/lockout"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Login protection: the pre-login check (POST /internal/v1/logins/check),
// failed-login counting (POST /internal/v1/logins/failed), and the admin
// lockout routes (/magic-sessionmanager/lockouts...).

// maxIdentifierIn bounds the identifier text read from a call; longer ones
// are cut here and normalised (with a digest) by lockout.NormalizeIdentifier.
const maxIdentifierIn = 4096

// guardProvider is implemented by enrichers that bring their own guard
// (enrich.Service: the policy from the settings and the security document,
// with alerts).
type guardProvider interface{ Guard() *lockout.Guard }

type loginProtection struct {
	guard  *lockout.Guard
	checks *prometheus.CounterVec
}

// initLoginProtection picks the enricher's guard, or one whose policy comes
// from the admin settings alone (no enrichment configured: no alerts).
func (s *Server) initLoginProtection() error {
	if gp, ok := s.cfg.Enricher.(guardProvider); ok && gp.Guard() != nil {
		s.lp.guard = gp.Guard()
	} else {
		s.lp.guard = lockout.New(s.st, lockout.Config{Logger: s.log, Policy: func() policy.Policy {
			p, err := policy.FromAppSettings(s.Settings(context.Background()), policy.Default())
			if err != nil {
				s.log.Warn("lockout settings unusable; using the defaults", "err", err)
			}
			return p
		}})
	}
	s.lp.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshsession_login_checks_total",
		Help: "Pre-login checks by decision (allow, locked, busy, policy) and failed logins counted (failed, failed_locked).",
	}, []string{"result"})
	return s.cfg.Registry.Register(s.lp.checks)
}

func (s *Server) loginProtectionRoutes() {
	s.handle("POST "+protocol.PathLoginCheck, authInternal, s.loginCheck)
	const a = "/magic-sessionmanager"
	s.handle("GET "+a+"/lockouts", authAdmin, s.adminLockouts)
	s.handle("POST "+a+"/lockouts/unlock", authAdmin, s.adminUnlock)
	s.handle("GET "+a+"/audit", authAdmin, s.adminAudit)
}

// identifierText reads an identifier field of any JSON type: a string as
// is, null or absent as "", anything else as its JSON text (so that
// {"identifier":["alice"]} is counted, never a 400 or 500), bounded.
func identifierText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var v string
	if raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		v = string(raw)
	}
	return truncate(cleanString(v), maxIdentifierIn)
}

// attemptIn is the wire form of LoginCheck and FailedLogin as read here:
// the identifier may be of any JSON type.
type attemptIn struct {
	IP         string          `json:"ip"`
	Identifier json.RawMessage `json:"identifier"`
	UserAgent  string          `json:"userAgent"`
	Status     int             `json:"status"`
}

func (s *Server) readAttempt(r *http.Request) (lockout.Attempt, attemptIn, error) {
	var in attemptIn
	if err := decodeJSON(r, &in); err != nil {
		return lockout.Attempt{}, in, err
	}
	if err := validIP("ip", in.IP); err != nil {
		return lockout.Attempt{}, in, err
	}
	return lockout.Attempt{IP: in.IP, Identifier: identifierText(in.Identifier), HasIdentifier: true}, in, nil
}

func lockedAnswer(l lockout.Lock, now time.Time) protocol.LoginCheckResponse {
	return protocol.LoginCheckResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonLocked,
		Message: lockout.Message, RetryAfter: l.RetryAfter(now)}
}

// loginCheck decides a login on its request: refused by what the policy
// decides from the address (403), locked out or already at its threshold
// of attempts in flight (429 at the proxy), else admitted (one pending
// attempt under its address and identifier).
func (s *Server) loginCheck(w http.ResponseWriter, r *http.Request) error {
	a, in, err := s.readAttempt(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.nowUTC()
	// What the address alone decides first: a login refused here takes no
	// attempt slot.
	if lc, ok := s.cfg.Enricher.(enrich.LoginChecker); ok {
		d, err := lc.CheckLoginRequest(ctx, a.IP, truncate(in.UserAgent, maxUserAgentLen), now)
		if err != nil {
			return err
		}
		if d.Deny {
			s.lp.checks.WithLabelValues("policy").Inc()
			s.refused(ctx, store.RefusalPolicy, now)
			writeJSON(w, http.StatusOK, protocol.LoginCheckResponse{Decision: protocol.DecisionDeny,
				Reason: protocol.ReasonPolicy, Message: d.Message})
			return nil
		}
	}
	lock, err := s.lp.guard.Begin(ctx, a, now)
	if err != nil {
		return err
	}
	if lock.Locked {
		if lock.Busy {
			s.lp.checks.WithLabelValues("busy").Inc()
		} else {
			s.lp.checks.WithLabelValues("locked").Inc()
		}
		s.refused(ctx, store.RefusalLockout, now)
		writeJSON(w, http.StatusOK, lockedAnswer(lock, now))
		return nil
	}
	s.lp.checks.WithLabelValues("allow").Inc()
	writeJSON(w, http.StatusOK, protocol.LoginCheckResponse{Decision: protocol.DecisionAllow})
	return nil
}

func (s *Server) failedLogin(w http.ResponseWriter, r *http.Request) error {
	a, _, err := s.readAttempt(r)
	if err != nil {
		return err
	}
	if a.IP == "" {
		return badRequest("ip is required")
	}
	lock, err := s.lp.guard.Failure(r.Context(), a, s.nowUTC())
	if err != nil {
		return err
	}
	if lock.Locked {
		s.lp.checks.WithLabelValues("failed_locked").Inc()
	} else {
		s.lp.checks.WithLabelValues("failed").Inc()
	}
	writeJSON(w, http.StatusOK, protocol.FailedLoginResponse{Locked: lock.Locked})
	return nil
}

// refused records a refused login by reason (store.RefusalLockout, …) for
// the dashboard's analytics, where the refusal is decided. Best effort: the
// login is refused whether or not this is recorded (a failure is logged).
// Wrong credentials are recorded with the failure (lockout.Guard.Failure).
func (s *Server) refused(ctx context.Context, reason string, now time.Time) {
	if err := s.st.RecordLoginRefusal(ctx, reason, now); err != nil {
		s.log.Warn("recording a refused login failed", "reason", reason, "err", err)
	}
}

// registrationLocked is the lockout check at registration: a login that
// was already on its way to the app when its identifier or address got
// locked (the request-time check passed) is refused too. ok reports a lock.
func (s *Server) registrationLocked(ctx context.Context, req protocol.RegisterRequest, now time.Time) (protocol.RegisterResponse, bool, error) {
	a := lockout.Attempt{IP: req.IP, Identifier: req.Identifier, HasIdentifier: req.Identifier != ""}
	lock, err := s.lp.guard.Check(ctx, a, now)
	if err != nil || !lock.Locked {
		return protocol.RegisterResponse{}, false, err
	}
	return protocol.RegisterResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonLocked, Message: lockout.Message}, true, nil
}

// registrationSucceeded resets the identifier's failures and frees the
// address's attempt after a login the app accepted (best effort: a
// failure here is logged).
func (s *Server) registrationSucceeded(ctx context.Context, req protocol.RegisterRequest, now time.Time) {
	a := lockout.Attempt{IP: req.IP, Identifier: req.Identifier, HasIdentifier: req.Identifier != ""}
	if err := s.lp.guard.Success(ctx, a, now); err != nil {
		s.log.Warn("resetting failed logins after a success failed", "err", err)
	}
}

// lockoutView is one lockout in the admin API.
type lockoutView struct {
	Type        string    `json:"type"` // identifier | ip
	Value       string    `json:"value"`
	Failures    int       `json:"failures"`
	LockedAt    time.Time `json:"lockedAt"`
	LockedUntil time.Time `json:"lockedUntil"`
	RetryAfter  int       `json:"retryAfter"` // seconds
}

func viewLockout(c store.LoginCounter, now time.Time) lockoutView {
	return lockoutView{Type: c.Kind, Value: c.Subject, Failures: c.Failures, LockedAt: c.LockedAt, LockedUntil: c.LockedUntil,
		RetryAfter: lockout.Lock{Locked: true, Until: c.LockedUntil}.RetryAfter(now)}
}

func (s *Server) adminLockouts(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r.URL.Query().Get("limit"), "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	now := s.nowUTC()
	list, err := s.lp.guard.List(r.Context(), now, limit)
	if err != nil {
		return err
	}
	out := make([]lockoutView, 0, len(list))
	for _, c := range list {
		out = append(out, viewLockout(c, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "meta": map[string]any{"count": len(out)}})
	return nil
}

func (s *Server) adminUnlock(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if len(in.Value) > maxIdentifierIn {
		return badRequest("value longer than %d bytes", maxIdentifierIn)
	}
	sub, err := lockout.ParseSubject(in.Type, in.Value)
	if err != nil {
		return badRequest("%v", err)
	}
	actor := adminName(r)
	if actor == "" {
		actor = "admin"
	}
	now := s.nowUTC()
	c, err := s.lp.guard.Unlock(r.Context(), sub, actor, now)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no lockout in force for this " + sub.Kind)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": viewLockout(c, now)})
	return nil
}

// AuditView is one audit event in the admin API (GET …/audit); the
// dashboard reads the trail through it.
type AuditView struct {
	ID          int64           `json:"id"`
	At          time.Time       `json:"at"`
	Event       string          `json:"event"`
	SubjectType string          `json:"subjectType"`
	Subject     string          `json:"subject"`
	Actor       string          `json:"actor"`
	Detail      json.RawMessage `json:"detail"`
}

// adminAudit lists audit events newest first (?before=<id>&limit=).
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	before, err := queryInt(q.Get("before"), "before", 0, 1, int64(math.MaxInt64)) // an event id
	if err != nil {
		return err
	}
	events, err := s.st.ListAudit(r.Context(), before, limit)
	if err != nil {
		return err
	}
	out := make([]AuditView, 0, len(events))
	for _, e := range events {
		out = append(out, AuditView{ID: e.ID, At: e.At, Event: e.Event, SubjectType: e.SubjectKind, Subject: e.Subject,
			Actor: e.Actor, Detail: e.Detail})
	}
	meta := map[string]any{"count": len(out)}
	if len(out) == limit {
		meta["next"] = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "meta": meta})
	return nil
}
