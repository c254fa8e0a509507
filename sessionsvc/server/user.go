package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

// ownSessionsLimit is how many sessions my-sessions lists (upstream's
// OWN_SESSIONS_LIMIT); meta.hasMore says when there are more.
const ownSessionsLimit = 200

// userListLimit is how many sessions user/{userId}/sessions lists
// (upstream's MAX_SESSIONS_QUERY).
const userListLimit = 1000

// caller is the authenticated user of a user API request.
type caller struct {
	id      userauth.Identity
	current *store.Session // nil when the token's session is unknown
}

// reasonMessages are the Strapi plugin's messages for a refused token, by
// reason (middlewares/session-rejection-headers.js).
var reasonMessages = map[string]string{
	protocol.ReasonLogout:  "You have logged out. Please log in again.",
	protocol.ReasonManual:  "Your session was terminated. Please log in again.",
	protocol.ReasonIdle:    "Your session expired due to inactivity. Please log in again.",
	protocol.ReasonExpired: "Your session has reached its maximum age. Please log in again.",
	protocol.ReasonBlocked: "Your account has been blocked. Contact support.",
}

// ReasonMessage is the message a refused token gets for reason.
func ReasonMessage(reason string) string {
	if m, ok := reasonMessages[reason]; ok {
		return m
	}
	return "Session invalid. Please log in again."
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

// userToken is the caller's token: the bearer token, else the token cookie
// the proxy also accepts (Config.UserTokenCookie); cookie says which.
func (s *Server) userToken(r *http.Request) (tok string, cookie, ok bool) {
	if raw, ok := bearer(r); ok {
		return raw, false, true
	}
	if name := s.cfg.UserTokenCookie; name != "" {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value, true, true
		}
	}
	return "", false, false
}

// crossSite reports a browser request another site made (Fetch metadata,
// or an Origin naming another host): a cookie must not authorise it.
func crossSite(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err != nil || !strings.EqualFold(u.Host, r.Host)
	}
	return false
}

func (s *Server) authenticateUser(r *http.Request) (*http.Request, error) {
	if s.cfg.Users == nil {
		return r, &apiError{Status: http.StatusServiceUnavailable, Message: userauth.ErrNotConfigured.Error()}
	}
	raw, fromCookie, ok := s.userToken(r)
	if ok && fromCookie && r.Method != http.MethodGet && crossSite(r) {
		// A cookie rides along on cross-site requests: never let one end sessions.
		return r, &apiError{Status: http.StatusForbidden, Message: "Cross-site request refused (send the token as a bearer token)"}
	}
	if !ok {
		return r, &apiError{Status: http.StatusUnauthorized, Message: "Missing or invalid credentials",
			Details: map[string]any{"cause": "missing bearer token"}}
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
		return r, &apiError{Status: http.StatusUnauthorized, Message: "Missing or invalid credentials",
			Details: map[string]any{"cause": err.Error()}, cause: err}
	}
	ctx := r.Context()
	blocked, err := s.st.IsBlocked(ctx, id.UserID)
	if err != nil {
		return r, err
	}
	if blocked {
		return r, &apiError{Status: http.StatusUnauthorized, Message: ReasonMessage(protocol.ReasonBlocked), Reason: protocol.ReasonBlocked}
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
				return r, &apiError{Status: http.StatusUnauthorized, Message: ReasonMessage(own.TerminationReason), Reason: own.TerminationReason}
			}
			c.current = own
		}
	case !sess.Active:
		return r, &apiError{Status: http.StatusUnauthorized, Message: ReasonMessage(sess.TerminationReason), Reason: sess.TerminationReason}
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

// ownsUserID reports whether uid names the caller: their user id, or the
// user documentId their login answer gave.
func (c *caller) ownsUserID(kr *secrets.Keyring, uid string) bool {
	if uid == c.id.UserID {
		return true
	}
	return c.current != nil && c.current.UserDocumentID != "" && uid == openName(kr, c.current.UserDocumentID)
}

// viewOptions are the view options of the current settings.
func (s *Server) viewOptions(ctx context.Context, list []store.Session) sessionview.Options {
	set := s.Settings(ctx)
	o := sessionview.Options{Now: s.nowUTC(), Inactivity: set.InactivityDuration(), Scoring: set.EnableSecurityScoring, Keyring: s.cfg.Keyring}
	ids, err := sessionview.AppIDs(ctx, s.st, list)
	if err != nil {
		s.log.Warn("looking up the sessions' app ids failed; showing documentIds", "err", err)
	}
	o.AppIDs = ids
	return o
}

func (s *Server) userSessions(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	ctx := r.Context()
	q := store.SessionQuery{UserID: c.id.UserID, Sort: "loginTime", Desc: true, Limit: ownSessionsLimit}
	if st := r.URL.Query().Get("status"); st != "" { // ours: a status filter
		var err error
		if q.Status, err = parseStatus(st); err != nil {
			return err
		}
		q.IdleBefore = s.nowUTC().Add(-s.InactivityTimeout(ctx))
	}
	page, err := s.st.ListSessions(ctx, q)
	if err != nil {
		return err
	}
	o := s.viewOptions(ctx, page.Sessions)
	o.Current, o.CurrentID = true, c.currentID()
	data, active := sessionview.List(page.Sessions, o)
	// The current session first, then newest login first (as upstream).
	for i, v := range data {
		if *v.IsCurrentSession && i > 0 {
			copy(data[1:i+1], data[:i])
			data[0] = v
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": data,
		"meta": map[string]any{"count": len(data), "active": active, "hasMore": page.Total > ownSessionsLimit, "limit": ownSessionsLimit},
	})
	return nil
}

func (s *Server) userSessionsByID(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	uid := r.PathValue("userId")
	if err := validUserID(uid); err != nil {
		return err
	}
	if !c.ownsUserID(s.cfg.Keyring, uid) {
		s.log.Warn("user asked for another user's sessions", "user", c.id.UserID, "asked", uid)
		return &apiError{Status: http.StatusForbidden, Message: "You can only access your own sessions"}
	}
	ctx := r.Context()
	page, err := s.st.ListSessions(ctx, store.SessionQuery{UserID: c.id.UserID, Sort: "loginTime", Desc: true, Limit: userListLimit})
	if err != nil {
		return err
	}
	data, _ := sessionview.List(page.Sessions, s.viewOptions(ctx, page.Sessions))
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{"count": len(data)}})
	return nil
}

func (s *Server) currentSession(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	ctx := r.Context()
	if c.current == nil {
		// A token issued moments ago whose login is still being registered:
		// ask the client to retry rather than say "no session".
		grace := time.Duration(s.Settings(ctx).SessionCreationGraceMs) * time.Millisecond
		if !c.id.IssuedAt.IsZero() && grace > 0 {
			// A token stamped slightly ahead of this clock (skew the
			// claim checks accept) is as fresh as one issued now.
			age := max(s.nowUTC().Sub(c.id.IssuedAt), 0)
			if age < grace {
				writeJSON(w, http.StatusAccepted, map[string]any{
					"data":    nil,
					"meta":    map[string]any{"pending": true, "retryAfterMs": (grace - age).Milliseconds()},
					"message": "Session is still being created — please retry shortly.",
				})
				return nil
			}
		}
		return notFound("Current session not found")
	}
	list := []store.Session{*c.current}
	o := s.viewOptions(ctx, list)
	o.Current, o.CurrentID = true, c.current.ID
	writeJSON(w, http.StatusOK, map[string]any{"data": sessionview.Of(c.current, o)})
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
	terminated := false
	if c.current == nil {
		if err := s.revokeCallerToken(r, c); err != nil {
			return err
		}
	} else {
		ids, err := s.endSessions(r.Context(), store.EndFilter{SessionIDs: []string{c.current.ID}, UserID: c.id.UserID}, protocol.ReasonLogout, false, s.nowUTC())
		if err != nil {
			return err
		}
		terminated = len(ids) > 0
	}
	msg := "Logged out successfully"
	if !terminated {
		msg = "No active session found — you are already logged out"
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": msg, "terminated": terminated})
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
	writeJSON(w, http.StatusOK, map[string]any{"message": "Logged out from all devices successfully", "terminatedCount": len(ids)})
	return nil
}

func (s *Server) logoutOthers(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	if c.current == nil {
		// No session of this token to keep: end them all (the safety the
		// user asked for) and say so.
		now := s.nowUTC()
		ids, err := s.endSessions(r.Context(), store.EndFilter{UserID: c.id.UserID}, protocol.ReasonLogout, false, now)
		if err != nil {
			return err
		}
		if err := s.revokeCallerToken(r, c); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"message": "All sessions terminated (could not preserve current session)", "terminatedCount": len(ids), "fellBackToLogoutAll": true,
		})
		return nil
	}
	ids, err := s.endSessions(r.Context(), store.EndFilter{UserID: c.id.UserID, ExceptSessionID: c.current.ID}, protocol.ReasonLogout, false, s.nowUTC())
	if err != nil {
		return err
	}
	msg := "No other active sessions to terminate"
	if len(ids) > 0 {
		msg = fmt.Sprintf("%d other session(s) terminated", len(ids))
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": msg, "terminatedCount": len(ids), "currentSessionPreserved": true})
	return nil
}

// pathSession resolves the session the path's sessionId names (an id or a
// key); one that names none is 404 "Session not found".
func (s *Server) pathSession(r *http.Request) (*store.Session, error) {
	sess, err := sessionview.Resolve(r.Context(), s.st, r.PathValue("sessionId"))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return nil, notFound("Session not found")
	}
	return sess, err
}

func (s *Server) deleteMySession(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	id := r.PathValue("sessionId")
	sess, err := s.pathSession(r)
	if err != nil {
		return err
	}
	if sess.UserID != c.id.UserID {
		s.log.Warn("user tried to end another user's session", "user", c.id.UserID, "session", sess.ID)
		return &apiError{Status: http.StatusForbidden, Message: "You can only terminate your own sessions"}
	}
	if sess.ID == c.currentID() {
		return badRequest("Cannot terminate the current session. Use /logout instead.")
	}
	already := !sess.Active
	if !already {
		// reason manual, as upstream's terminateOwnSession.
		if _, err := s.endSessions(r.Context(), store.EndFilter{SessionIDs: []string{sess.ID}, UserID: c.id.UserID}, protocol.ReasonManual, true, s.nowUTC()); err != nil {
			return err
		}
	}
	msg := "Session " + id + " terminated successfully"
	if already {
		msg = "Session " + id + " was already terminated"
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": msg, "success": true, "alreadyTerminated": already})
	return nil
}
