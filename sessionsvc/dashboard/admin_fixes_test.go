package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// TestCleanInactiveKeepsSignInThrottle: the admin API's clean-inactive
// deletes ended sessions only; the dashboard's sign-in throttle
// (failed_logins "dashboard:<ip>") survives it.
func TestCleanInactiveKeepsSignInThrottle(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	for range maxLoginFailures {
		require.Equal(t, 401, c.login("wrong-token-wrong-token").status)
	}
	require.Equal(t, http.StatusTooManyRequests, c.login("wrong-token-wrong-token").status)
	a := c.do("POST", "/magic-sessionmanager/sessions/clean-inactive", nil, map[string]string{"Authorization": "Bearer " + testAdminToken})
	require.Equal(t, 200, a.status, string(a.body))
	assert.EqualValues(t, 0, a.json(t)["deletedCount"])
	assert.Equal(t, http.StatusTooManyRequests, c.login("wrong-token-wrong-token").status, "still throttled")
}

// TestRetryOnlyFailedDeliveries: the dashboard retries a dead-lettered
// delivery only; a pending one (perhaps being sent by a replica right now)
// or a sent one answers 409 and is left as it is.
func TestRetryOnlyFailedDeliveries(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, e.st.EnqueueAlerts(ctx, []store.Alert{
		{Event: "user.blocked", Channel: "webhook:siem", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "user.blocked", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
	}))
	leased, err := e.st.ClaimAlerts(ctx, "replica-1", 10, now, time.Hour)
	require.NoError(t, err)
	require.Len(t, leased, 2)
	require.NoError(t, e.st.MarkAlertSent(ctx, leased[1].ID, now))

	c := e.admin()
	for _, id := range []int64{leased[0].ID, leased[1].ID} {
		r := c.post("POST", "/dashboard/api/alerts/"+strconv.FormatInt(id, 10)+"/retry", nil)
		assert.Equal(t, http.StatusConflict, r.status, string(r.body))
	}
	assert.Equal(t, http.StatusNotFound, c.post("POST", "/dashboard/api/alerts/424242/retry", nil).status)
	again, err := e.st.ClaimAlerts(ctx, "replica-2", 10, now.Add(time.Minute), time.Hour)
	require.NoError(t, err)
	assert.Empty(t, again, "the lease of replica-1 holds")
	audit, err := e.st.ListAudit(ctx, 0, 100)
	require.NoError(t, err)
	for _, ev := range audit {
		assert.NotEqual(t, "alert.retried", ev.Event, "a refused retry is not audited")
	}
}
