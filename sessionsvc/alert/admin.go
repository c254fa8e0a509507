package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/internal/strapi"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Admin routes, under the admin API's prefix.
const (
	RouteList  = "GET /magic-sessionmanager/alerts"             // ?dead=true&limit=N
	RouteRetry = "POST /magic-sessionmanager/alerts/{id}/retry" // puts a dead-lettered alert back in the queue
)

// AlertJSON is an outbox row as the admin API shows it.
type AlertJSON struct {
	ID          int64           `json:"id"`
	Event       string          `json:"event"`
	Channel     string          `json:"channel"`
	Attempts    int             `json:"attempts"`
	NextAttempt time.Time       `json:"nextAttempt"`
	LastError   string          `json:"lastError,omitempty"`
	Dead        bool            `json:"dead"`
	CreatedAt   time.Time       `json:"createdAt"`
	SentAt      *time.Time      `json:"sentAt"`
	Status      string          `json:"status"` // pending, sent, dead
	Payload     json.RawMessage `json:"payload"`
}

// ToJSON is a as the admin API and the dashboard show it.
func ToJSON(a store.Alert) AlertJSON {
	status := "pending"
	switch {
	case a.SentAt != nil:
		status = "sent"
	case a.Dead:
		status = "dead"
	}
	p := a.Payload
	if !json.Valid(p) {
		p = json.RawMessage("null")
	}
	return AlertJSON{ID: a.ID, Event: a.Event, Channel: a.Channel, Attempts: a.Attempts, NextAttempt: a.NextAttempt.UTC(),
		LastError: a.LastError, Dead: a.Dead, CreatedAt: a.CreatedAt.UTC(), SentAt: a.SentAt, Status: status, Payload: p}
}

// AdminHandlers serve the outbox to admins (the sessionsvc Mounts hook):
// the list (all or dead-lettered only) and retry of a dead-lettered alert.
// Callers authenticate like the admin API: "Authorization: Bearer <admin
// token>", checked against the store's hashed admin tokens.
func AdminHandlers(st AdminStore, logger *slog.Logger) map[string]http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &adminAPI{st: st, log: logger}
	return map[string]http.Handler{
		RouteList:  h.auth(h.list),
		RouteRetry: h.auth(h.retry),
	}
}

// AdminStore is what the admin handlers need of the store: the outbox, the
// admin tokens that authenticate its callers, and the audit trail a retry
// is written to.
type AdminStore interface {
	store.AlertOutbox
	store.AdminTokens
	store.Audit
}

type adminAPI struct {
	st  AdminStore
	log *slog.Logger
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	strapi.WriteJSON(w, status, v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	strapi.WriteError(w, status, strapi.ErrorName(status), msg, nil)
}

type ctxKey struct{}

// adminName is the name of the admin token that authenticated r ("admin"
// when unknown), the audit trail's actor.
func adminName(r *http.Request) string {
	if n, _ := r.Context().Value(ctxKey{}).(string); n != "" {
		return n
	}
	return "admin"
}

func (h *adminAPI) auth(next func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			writeError(w, http.StatusUnauthorized, "admin token required (Authorization: Bearer <token>)")
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		at, err := h.st.FindAdminToken(r.Context(), hex.EncodeToString(sum[:]), time.Now().UTC())
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeError(w, http.StatusUnauthorized, "invalid admin token")
				return
			}
			h.log.Warn("admin token check failed", "error", err)
			writeError(w, http.StatusServiceUnavailable, "database unavailable, retry later")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, at.Name)))
	})
}

func (h *adminAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dead := false
	if v := q.Get("dead"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "dead must be true or false")
			return
		}
		dead = b
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be within 1..1000")
			return
		}
		limit = n
	}
	all, err := h.st.ListAlerts(r.Context(), dead, limit)
	if err != nil {
		h.fail(w, "list alerts", err)
		return
	}
	out := make([]AlertJSON, 0, len(all))
	for _, a := range all {
		out = append(out, ToJSON(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "meta": map[string]any{"count": len(out), "deadOnly": dead, "limit": limit}})
}

func (h *adminAPI) retry(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "alert id must be a positive integer")
		return
	}
	now := time.Now().UTC()
	if err := h.st.RetryAlert(r.Context(), id, now); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "no alert with this id")
			return
		case errors.Is(err, store.ErrConflict):
			writeError(w, http.StatusConflict, "alert is not dead-lettered (pending or sent): only a dead-lettered alert can be retried")
			return
		}
		h.fail(w, "retry alert", err)
		return
	}
	// Audited as the admin API's own routes are (who, when, from where); a
	// failed audit write is logged, the retry has happened by then.
	det, _ := json.Marshal(map[string]any{"ip": clientIP(r)})
	if err := h.st.AppendAudit(r.Context(), []store.AuditEvent{{At: now, Event: store.AuditAlertRetried, SubjectKind: "alert",
		Subject: strconv.FormatInt(id, 10), Actor: adminName(r), Detail: det}}); err != nil {
		h.log.Warn("recording the retry in the audit trail failed", "alert", id, "err", err)
	}
	h.log.Info("dead-lettered alert queued again by an admin", "alert", id, "admin", adminName(r))
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": id, "status": "pending"}, "success": true})
}

// clientIP is the connection's peer, as the admin API's audit records it
// (server.ClientIP: a forwarded-for header is not trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *adminAPI) fail(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "database unavailable, retry later")
	default:
		h.log.Error(op+" failed", "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}
