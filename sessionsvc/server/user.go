package server

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

// caller is the authenticated user of a user API request.
type caller struct {
	id      userauth.Identity
	current *store.Session // nil when the token's session is unknown
}

var sessionIDRe = regexp.MustCompile(`^sess_[A-Za-z0-9_-]{1,64}$`)

func validSessionID(id string) error {
	if !sessionIDRe.MatchString(id) {
		return badRequest("invalid session id %q (want sess_…)", truncate(id, 80))
	}
	return nil
}

func validUserID(id string) error {
	if id == "" || len(id) > maxUserIDLen || strings.ContainsAny(id, "\x00\n\r") {
		return badRequest("invalid user id")
	}
	return nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func (s *Server) authenticateUser(r *http.Request) (*http.Request, error) {
	if s.cfg.Users == nil {
		return r, &apiError{Status: http.StatusServiceUnavailable, Message: userauth.ErrNotConfigured.Error()}
	}
	raw, ok := bearer(r)
	if !ok {
		return r, &apiError{Status: http.StatusUnauthorized, Message: "missing bearer token"}
	}
	if vals := r.Header.Values("Authorization"); len(vals) > 1 && slices.ContainsFunc(vals[1:], func(v string) bool { return v != vals[0] }) {
		// Which one would a proxy or the app have used? Refuse, as the filter does.
		return r, &apiError{Status: http.StatusUnauthorized, Message: "invalid token: more than one Authorization header"}
	}
	id, err := s.cfg.Users.Verify(r.Context(), raw)
	if errors.Is(err, userauth.ErrNotConfigured) {
		return r, &apiError{Status: http.StatusServiceUnavailable, Message: err.Error()}
	}
	if err != nil {
		return r, &apiError{Status: http.StatusUnauthorized, Message: err.Error()}
	}
	ctx := r.Context()
	blocked, err := s.st.IsBlocked(ctx, id.UserID)
	if err != nil {
		return r, err
	}
	if blocked {
		return r, &apiError{Status: http.StatusForbidden, Message: "this account is blocked", Reason: protocol.ReasonBlocked}
	}
	c := &caller{id: id}
	sess, err := s.st.FindSessionByKeys(ctx, id.Keys)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return r, err
	case sess.UserID != id.UserID:
		// Keys of another user's session (e.g. a sid claim copied from
		// someone else's token): never act on it. The token's own
		// fingerprint may still name the caller's session.
		s.log.Warn("token keys name another user's session", "user", id.UserID, "session", sess.ID)
		if own, oerr := s.st.FindSessionByKeys(ctx, fingerprintKeys(id.Keys)); oerr == nil && own.UserID == id.UserID {
			if !own.Active {
				return r, &apiError{Status: http.StatusUnauthorized, Message: "session ended", Reason: own.TerminationReason}
			}
			c.current = own
		}
	case !sess.Active:
		return r, &apiError{Status: http.StatusUnauthorized, Message: "session ended", Reason: sess.TerminationReason}
	default:
		c.current = sess
	}
	return r.WithContext(context.WithValue(ctx, ctxIdentity, c)), nil
}

func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(ctxIdentity).(*caller)
	return c
}

func (c *caller) currentID() string {
	if c.current == nil {
		return ""
	}
	return c.current.ID
}

// listForUser answers the user's sessions, newest login first.
func (s *Server) listForUser(w http.ResponseWriter, r *http.Request, userID, currentID string) error {
	pg, err := parsePaging(r, 100)
	if err != nil {
		return err
	}
	q := store.SessionQuery{UserID: userID, Sort: "loginTime", Desc: true, Offset: pg.offset(), Limit: pg.size}
	if st := r.URL.Query().Get("status"); st != "" {
		if q.Status, err = parseStatus(st); err != nil {
			return err
		}
		q.IdleBefore = s.nowUTC().Add(-s.InactivityTimeout(r.Context()))
	}
	page, err := s.st.ListSessions(r.Context(), q)
	if err != nil {
		return err
	}
	data, active := s.toJSONList(r.Context(), page.Sessions, currentID, s.nowUTC())
	writeJSON(w, http.StatusOK, map[string]any{
		"data": data,
		"meta": map[string]any{"count": len(data), "active": active, "total": page.Total, "pagination": pg.meta(page.Total)},
	})
	return nil
}

func (s *Server) userSessions(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	return s.listForUser(w, r, c.id.UserID, c.currentID())
}

func (s *Server) userSessionsByID(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	uid := r.PathValue("userId")
	if err := validUserID(uid); err != nil {
		return err
	}
	if uid != c.id.UserID {
		s.log.Warn("user asked for another user's sessions", "user", c.id.UserID, "asked", uid)
		return &apiError{Status: http.StatusForbidden, Message: "You can only access your own sessions"}
	}
	return s.listForUser(w, r, uid, c.currentID())
}

func (s *Server) currentSession(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	if c.current == nil {
		return notFound("no session is known for this token")
	}
	j := toJSON(*c.current, c.current.ID, s.InactivityTimeout(r.Context()), s.nowUTC())
	writeJSON(w, http.StatusOK, map[string]any{"data": j, "meta": map[string]any{}})
	return nil
}

// revokeCallerToken publishes the caller's token keys when sessionsvc does
// not know its session, so that logging out still takes effect.
func (s *Server) revokeCallerToken(r *http.Request, c *caller) error {
	now := s.nowUTC()
	exp := c.id.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(s.cfg.RevocationTTL)
	}
	keys, err := s.ownedKeys(r.Context(), c)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return s.st.RevokeKeys(r.Context(), keys, protocol.ReasonLogout, exp, now)
}

// ownedKeys returns the caller's token keys that name no session of
// another user: a token's sid claim may name someone else's session
// (issue 12 item 6), and revoking that key would end it.
func (s *Server) ownedKeys(ctx context.Context, c *caller) ([]string, error) {
	keys := make([]string, 0, len(c.id.Keys))
	for _, k := range c.id.Keys {
		sess, err := s.st.FindSessionByKeys(ctx, []string{k})
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		case sess.UserID != c.id.UserID:
			s.log.Warn("not revoking a key of another user's session", "user", c.id.UserID, "session", sess.ID)
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// fingerprintKeys returns the "fp:" keys among keys.
func fingerprintKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, "fp:") {
			out = append(out, k)
		}
	}
	return out
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	if c.current == nil {
		if err := s.revokeCallerToken(r, c); err != nil {
			return err
		}
	} else if _, err := s.endSessions(r.Context(), store.EndFilter{SessionIDs: []string{c.current.ID}}, protocol.ReasonLogout, false, s.nowUTC()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Logged out successfully", "success": true})
	return nil
}

func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	now := s.nowUTC()
	ids, err := s.endSessions(r.Context(), store.EndFilter{UserID: c.id.UserID}, protocol.ReasonLogout, false, now)
	if err != nil {
		return err
	}
	// Tokens the proxy never saw being issued are refused by the not-before time.
	if err := s.st.SetNotBefore(r.Context(), c.id.UserID, now, now.Add(s.cfg.RevocationTTL), now); err != nil {
		return err
	}
	if c.current == nil {
		if err := s.revokeCallerToken(r, c); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Logged out from all devices successfully", "success": true, "terminated": len(ids)})
	return nil
}

func (s *Server) logoutOthers(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	ids, err := s.endSessions(r.Context(), store.EndFilter{UserID: c.id.UserID, ExceptSessionID: c.currentID()}, protocol.ReasonLogout, false, s.nowUTC())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"message": "Logged out from other devices successfully", "success": true, "terminated": len(ids), "terminatedCount": len(ids),
	})
	return nil
}

func (s *Server) deleteMySession(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	id := r.PathValue("sessionId")
	if err := validSessionID(id); err != nil {
		return err
	}
	if id == c.currentID() {
		return badRequest("Cannot terminate the current session. Use logout instead.")
	}
	sess, err := s.st.GetSession(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.UserID != c.id.UserID) {
		// Another user's session is reported as missing: no probing.
		return notFound("session not found")
	}
	if err != nil {
		return err
	}
	if _, err := s.endSessions(r.Context(), store.EndFilter{SessionIDs: []string{id}, UserID: c.id.UserID}, protocol.ReasonLogout, false, s.nowUTC()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Session " + id + " terminated", "success": true})
	return nil
}
