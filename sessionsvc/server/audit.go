package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Audit events of admin actions (issue 17). Lockouts write their own
// (store.AuditLockoutLocked, store.AuditLockoutUnlocked) in the unlock's
// transaction; the admin token CLI writes token.created / token.revoked.
const (
	AuditSessionTerminated = "session.terminated"
	AuditSessionDeleted    = "session.deleted"
	AuditUserTerminatedAll = "user.terminated_all"
	AuditUserBlocked       = "user.blocked"
	AuditUserUnblocked     = "user.unblocked"
	AuditSettingsChanged   = "settings.changed"
	AuditSessionsPurged    = "sessions.purged"
	AuditTokenCreated      = "token.created"
	AuditTokenRevoked      = "token.revoked"
	AuditAlertRetried      = store.AuditAlertRetried // written by the outbox routes (alert.AdminHandlers) and the dashboard
)

// auditRoutes: the admin routes that change state and are audited here,
// by ServeMux pattern.
var auditRoutes = map[string]struct{ event, kind, param string }{
	"POST " + adminPrefix + "/sessions/{sessionId}/terminate": {AuditSessionTerminated, "session", "sessionId"},
	"DELETE " + adminPrefix + "/sessions/{sessionId}":         {AuditSessionDeleted, "session", "sessionId"},
	"POST " + adminPrefix + "/user/{userId}/terminate-all":    {AuditUserTerminatedAll, "user", "userId"},
	"POST " + adminPrefix + "/user/{userId}/toggle-block":     {AuditUserBlocked, "user", "userId"}, // or unblocked, from the answer
	"POST " + adminPrefix + "/sessions/clean-inactive":        {AuditSessionsPurged, "", ""},
	"PUT " + adminPrefix + "/settings":                        {AuditSettingsChanged, "", ""},
}

const adminPrefix = "/magic-sessionmanager"

// auditCapture keeps the status and the start of the answer (the audit
// reads the outcome from it: blocked or not, how many sessions).
type auditCapture struct {
	statusRecorder
	body bytes.Buffer
}

const auditCaptureMax = 4 << 10

func (c *auditCapture) Write(b []byte) (int, error) {
	if room := auditCaptureMax - c.body.Len(); room > 0 {
		c.body.Write(b[:min(len(b), room)])
	}
	return c.statusRecorder.Write(b)
}

// auditNote is what an audited handler adds to its audit event's detail
// (noteAudit): what the answer does not say, such as how many sessions
// terminate-all ended.
type auditNote map[string]any

// noteAudit adds key=v to the detail of r's audit event; nothing when r's
// route is not audited.
func noteAudit(r *http.Request, key string, v any) {
	if n, ok := r.Context().Value(ctxAuditNote).(auditNote); ok {
		n[key] = v
	}
}

// ClientIP is the address an admin action came from: the connection's
// peer (a forwarded-for header is not trusted here).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audited runs an admin handler and, when pattern is an audited route and
// the action succeeded, records who (the admin token's name), when, what
// and from which address. A failed audit write is logged; the action has
// happened by then and is not undone.
func (s *Server) audited(pattern string, w http.ResponseWriter, r *http.Request, h handlerFunc) error {
	route, ok := auditRoutes[pattern]
	if !ok {
		return h(w, r)
	}
	var reqBody bytes.Buffer
	if route.event == AuditSettingsChanged && r.Body != nil {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(r.Body, &reqBody), r.Body}
	}
	subject := ""
	if route.param != "" {
		subject = r.PathValue(route.param)
	}
	if route.kind == "session" {
		// The admin API answers 200 for an unknown session (as upstream
		// does): nothing happened, nothing to record. A known one is
		// recorded under its store id, whichever id the caller used.
		ss, err := sessionview.Resolve(r.Context(), s.st, subject)
		if err != nil {
			return h(w, r)
		}
		subject = ss.ID
	}
	note := auditNote{}
	r = r.WithContext(context.WithValue(r.Context(), ctxAuditNote, note))
	c := &auditCapture{statusRecorder: statusRecorder{ResponseWriter: w}}
	if err := h(c, r); err != nil {
		return err
	}
	if c.status >= 300 {
		return nil
	}
	detail := map[string]any{"ip": ClientIP(r)}
	if ua := r.Header.Get("User-Agent"); ua == "meshsession-dashboard" {
		detail["via"] = "dashboard"
	}
	var answer map[string]any
	_ = json.Unmarshal(c.body.Bytes(), &answer)
	ev := route.event
	switch ev {
	case AuditUserBlocked:
		if b, ok := answer["blocked"].(bool); ok && !b {
			ev = AuditUserUnblocked
		}
	case AuditSessionsPurged:
		if n, ok := answer["deletedCount"].(float64); ok {
			detail["deleted"] = int(n)
		}
	case AuditSettingsChanged:
		// Which settings were sent, never their values (secrets).
		var doc map[string]json.RawMessage
		if json.Unmarshal(reqBody.Bytes(), &doc) == nil {
			keys := make([]string, 0, len(doc))
			for k := range doc {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			detail["keys"] = strings.Join(keys, ",")
		}
	}
	for k, v := range note {
		detail[k] = v
	}
	actor := adminName(r)
	if actor == "" {
		actor = "admin"
	}
	b, _ := json.Marshal(detail)
	e := store.AuditEvent{At: s.nowUTC(), Event: ev, SubjectKind: route.kind, Subject: subject, Actor: actor, Detail: b}
	if err := s.st.AppendAudit(r.Context(), []store.AuditEvent{e}); err != nil {
		s.log.Warn("recording an admin action in the audit trail failed", "event", ev, "subject", subject, "admin", actor, "err", err)
	}
	return nil
}
