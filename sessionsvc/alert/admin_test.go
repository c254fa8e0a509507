package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestAdminHandlers(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	const tok = "admin-secret-token"
	sum := sha256.Sum256([]byte(tok))
	_, err := st.CreateAdminToken(ctx, "t", hex.EncodeToString(sum[:]), time.Now())
	require.NoError(t, err)

	enqueue(t, st, 2, []string{"webhook:gone"}, time.Now().UTC())
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(map[string]Sender{
		"webhook:gone": SenderFunc(func(context.Context, store.Alert, Payload) error { return Permanent(errors.New("answered 410")) }),
	})}, nil)
	_, err = d.Tick(ctx)
	require.NoError(t, err)

	mux := http.NewServeMux()
	for p, h := range AdminHandlers(st, nil) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, token string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}

	code, body := do("GET", "/magic-sessionmanager/alerts?dead=true", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, map[string]any{"status": float64(401), "name": "UnauthorizedError",
		"message": "admin token required (Authorization: Bearer <token>)", "details": map[string]any{}}, body["error"],
		"Strapi's error envelope, details an object")
	code, _ = do("GET", "/magic-sessionmanager/alerts?dead=true", "wrong")
	assert.Equal(t, 401, code)

	code, body = do("GET", "/magic-sessionmanager/alerts?dead=true", tok)
	require.Equal(t, 200, code)
	data := body["data"].([]any)
	require.Len(t, data, 2)
	first := data[0].(map[string]any)
	assert.Equal(t, "dead", first["status"])
	assert.Equal(t, "answered 410", first["lastError"])
	assert.Equal(t, EventLoginSuspicious, first["payload"].(map[string]any)["event"])

	id := int64(first["id"].(float64))
	code, _ = do("POST", "/magic-sessionmanager/alerts/"+jsonInt(id)+"/retry", tok)
	assert.Equal(t, 200, code)
	audit, err := st.ListAudit(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, audit, 1, "the retry is audited")
	assert.Equal(t, store.AuditAlertRetried, audit[0].Event)
	assert.Equal(t, "alert", audit[0].SubjectKind)
	assert.Equal(t, jsonInt(id), audit[0].Subject)
	assert.Equal(t, "t", audit[0].Actor, "the admin token's name")
	assert.JSONEq(t, `{"ip":"127.0.0.1"}`, string(audit[0].Detail))
	code, body = do("GET", "/magic-sessionmanager/alerts?dead=true", tok)
	require.Equal(t, 200, code)
	assert.Len(t, body["data"].([]any), 1, "one left in the dead letters")
	code, body = do("POST", "/magic-sessionmanager/alerts/"+jsonInt(id)+"/retry", tok)
	assert.Equal(t, 409, code, "pending again: a retry would break the lease of a replica sending it")
	assert.Equal(t, "ConflictError", body["error"].(map[string]any)["name"])
	sent := enqueueSent(t, st)
	code, _ = do("POST", "/magic-sessionmanager/alerts/"+jsonInt(sent)+"/retry", tok)
	assert.Equal(t, 409, code, "sent")

	code, _ = do("POST", "/magic-sessionmanager/alerts/999999/retry", tok)
	assert.Equal(t, 404, code)
	audit, err = st.ListAudit(ctx, 0, 10)
	require.NoError(t, err)
	assert.Len(t, audit, 1, "refused retries are not audited")
	code, _ = do("POST", "/magic-sessionmanager/alerts/abc/retry", tok)
	assert.Equal(t, 400, code)
	code, _ = do("GET", "/magic-sessionmanager/alerts?limit=0", tok)
	assert.Equal(t, 400, code)
	code, _ = do("GET", "/magic-sessionmanager/alerts?dead=maybe", tok)
	assert.Equal(t, 400, code)
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// enqueueSent stores one alert marked sent and returns its id.
func enqueueSent(t *testing.T, st store.AlertOutbox) int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, st.EnqueueAlerts(ctx, []store.Alert{{Event: EventLoginSuccess, Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now}}))
	a, err := st.ClaimAlerts(ctx, "test", 1, now, time.Minute)
	require.NoError(t, err)
	require.Len(t, a, 1)
	require.NoError(t, st.MarkAlertSent(ctx, a[0].ID, now))
	return a[0].ID
}

// A delivered alert is listed as sent, rendered from what it keeps: the
// user's names went to the channel and are dropped from the stored payload.
func TestAdminListsSentAlertsWithoutNames(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	p := samplePayload()
	p.Username, p.Email = "alice", "alice@example.com"
	a, err := NewAlerts(p, []string{"webhook:ops"}, time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, st.EnqueueAlerts(ctx, a))
	var sent Payload
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(map[string]Sender{
		"webhook:ops": SenderFunc(func(_ context.Context, _ store.Alert, p Payload) error { sent = p; return nil }),
	})}, nil)
	_, err = d.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, "alice@example.com", sent.Email, "the channel got the names")

	list, err := st.ListAlerts(ctx, false, 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	j := ToJSON(list[0])
	assert.Equal(t, "sent", j.Status)
	var shown map[string]any
	require.NoError(t, json.Unmarshal(j.Payload, &shown))
	assert.NotContains(t, shown, "username")
	assert.NotContains(t, shown, "email")
	assert.Equal(t, "alice", shown["userId"])
	assert.Equal(t, EventLoginSuspicious, shown["event"])
	back, err := DecodePayload(list[0])
	require.NoError(t, err)
	assert.Equal(t, "81.2.69.142", back.IP)
}
