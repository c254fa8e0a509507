package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich/useragent"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// discoveries picks, from an activity batch, the marks that describe their
// token (protocol.Activity.Keys): candidates for session discovery. A mark
// whose description is malformed is still a valid mark: its description is
// dropped, not the batch.
func (s *Server) discoveries(batch []protocol.Activity, now time.Time) []store.Discovery {
	var out []store.Discovery
	for _, a := range batch {
		if len(a.Keys) == 0 || validUserID(a.User) != nil {
			continue
		}
		if a.Keys[0] != a.Key || validKeys("keys", a.Keys, true) != nil || (a.IP != "" && validIP("ip", a.IP) != nil) || !validUnix(a.Exp) {
			continue
		}
		at := time.UnixMilli(a.At).UTC()
		if at.After(now) {
			at = now
		}
		exp := unixTime(a.Exp)
		if !exp.IsZero() && !exp.After(now) {
			continue // an expired token names no live session
		}
		d := store.Discovery{UserID: a.User, IP: a.IP, UserAgent: truncate(a.UserAgent, maxUserAgentLen), FirstSeen: at}
		for _, k := range a.Keys {
			kind := store.KeyAccess
			if strings.HasPrefix(k, protocol.PrefixSession) {
				kind = store.KeySession
			}
			d.Keys = append(d.Keys, store.SessionKey{Key: k, Kind: kind, ExpiresAt: exp})
		}
		out = append(out, d)
	}
	return out
}

// discover registers the tokens of an activity batch that no session knows
// (store.DiscoverSessions: a separate path from the activity update of
// known sessions). Failures are logged, never fail the batch: the plugin
// reports the session again in its next interval.
func (s *Server) discover(ctx context.Context, ds []store.Discovery, now time.Time) {
	if len(ds) == 0 {
		return
	}
	parser := s.uaParser()
	for i := range ds {
		dev := parser.Parse(ds[i].UserAgent)
		ds[i].DeviceType, ds[i].BrowserName, ds[i].OSName = dev.Type, dev.Browser, dev.OS
	}
	// In chunks of a bounded number of keys (one IN list each).
	const maxKeys = 1024
	for len(ds) > 0 {
		n, keys := 0, 0
		for n < len(ds) && (n == 0 || keys+len(ds[n].Keys) <= maxKeys) {
			keys += len(ds[n].Keys)
			n++
		}
		ids, err := s.st.DiscoverSessions(ctx, ds[:n], now)
		ds = ds[n:]
		if err != nil {
			s.log.Warn("session discovery failed; retried with the next activity", "candidates", n, "err", err)
			continue
		}
		for _, id := range ids {
			s.log.Info("session discovered from traffic", "session", id)
		}
		s.metrics.discovered.Add(float64(len(ids)))
	}
}

func (s *Server) uaParser() *useragent.Parser {
	s.uaOnce.Do(func() { s.ua = useragent.NewParser() })
	return s.ua
}

// loginPolicy is implemented by enrichers that know whether any login rule
// (country, reputation, score) may refuse a login.
type loginPolicy interface {
	LoginPolicyActive() bool
}

// unreadableLogin answers for a 2xx login answer the filter could not read:
// with any login policy active it is refused (its token was never checked,
// and must not reach the client); otherwise it passes, unregistered, and is
// counted and logged here.
func (s *Server) unreadableLogin(w http.ResponseWriter, r *http.Request) error {
	var req protocol.UnreadableLogin
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.IP != "" {
		if err := validIP("ip", req.IP); err != nil {
			return err
		}
	}
	switch req.Why {
	case protocol.UnreadableCompressed, protocol.UnreadableTooLarge, protocol.UnreadableNotJSON, protocol.UnreadableNoToken:
	default:
		return badRequest("why: want one of %s, %s, %s, %s", protocol.UnreadableCompressed,
			protocol.UnreadableTooLarge, protocol.UnreadableNotJSON, protocol.UnreadableNoToken)
	}
	active := false
	if lp, ok := s.cfg.Enricher.(loginPolicy); ok && lp != nil {
		active = lp.LoginPolicyActive()
	}
	s.metrics.unreadableLogins.WithLabelValues(req.Why, fmt.Sprint(active)).Inc()
	if active {
		s.log.Warn("login answer unreadable by the proxy; refused (a login policy is active)",
			"why", req.Why, "status", req.Status, "ip", req.IP, "route", truncate(req.Route, 256))
		s.refused(r.Context(), store.RefusalPolicy, s.nowUTC())
		writeJSON(w, http.StatusOK, protocol.UnreadableLoginResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonPolicy,
			Message: "Login refused: the answer could not be checked against the login policy."})
		return nil
	}
	s.log.Warn("login answer unreadable by the proxy; passed unregistered (no login policy is active)",
		"why", req.Why, "status", req.Status, "ip", req.IP, "route", truncate(req.Route, 256))
	writeJSON(w, http.StatusOK, protocol.UnreadableLoginResponse{Decision: protocol.DecisionAllow})
	return nil
}
