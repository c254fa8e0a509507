package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testAlerts(t *testing.T, st store.Store) {
	now := t0
	require.NoError(t, st.EnqueueAlerts(ctx(), []store.Alert{
		{Event: "e1", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "e2", Channel: "webhook:x", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "later", Channel: "email", NextAttempt: now.Add(time.Hour)},
	}))
	a, err := st.ClaimAlerts(ctx(), "r1", 10, now, time.Minute)
	require.NoError(t, err)
	require.Len(t, a, 2)
	assert.Equal(t, "e1", a[0].Event)
	b, err := st.ClaimAlerts(ctx(), "r2", 10, now, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, b, "leased alerts are not handed out twice")

	require.NoError(t, st.MarkAlertSent(ctx(), a[0].ID, now))
	require.NoError(t, st.MarkAlertFailed(ctx(), a[1].ID, "boom", now.Add(time.Minute), true))
	dead, err := st.ListAlerts(ctx(), true, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, "boom", dead[0].LastError)
	assert.Equal(t, 1, dead[0].Attempts)

	// Lease expired and due: "later" comes back after an hour; the dead one only after a retry.
	c, err := st.ClaimAlerts(ctx(), "r2", 10, now.Add(2*time.Hour), time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	assert.Equal(t, "later", c[0].Event)
	require.NoError(t, st.RetryAlert(ctx(), a[1].ID, now.Add(2*time.Hour)))
	c, err = st.ClaimAlerts(ctx(), "r3", 10, now.Add(2*time.Hour), time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	assert.Equal(t, "e2", c[0].Event)
	assert.ErrorIs(t, st.MarkAlertSent(ctx(), 424242, now), store.ErrNotFound)
}

// testAlertRetention: a sent alert keeps its payload without the user's
// names; Purge removes the alerts sent, and those dead-lettered (last
// tried), before its bound, and keeps the pending ones.
func testAlertRetention(t *testing.T, st store.Store) {
	now := t0
	payload := `{"event":"login.vpn","userId":"u1","username":"alice","email":"alice@example.com","ip":"192.0.2.1"}`
	require.NoError(t, st.EnqueueAlerts(ctx(), []store.Alert{
		{Event: "sent-old", Channel: "email", Payload: json.RawMessage(payload), NextAttempt: now},
		{Event: "dead-old", Channel: "email", Payload: json.RawMessage(payload), NextAttempt: now},
		{Event: "sent-new", Channel: "email", Payload: json.RawMessage(`"not an object"`), NextAttempt: now},
		{Event: "dead-new", Channel: "email", Payload: json.RawMessage(payload), NextAttempt: now},
		{Event: "pending", Channel: "email", Payload: json.RawMessage(payload), NextAttempt: now},
	}))
	a, err := st.ClaimAlerts(ctx(), "r1", 10, now, time.Minute)
	require.NoError(t, err)
	require.Len(t, a, 5)
	require.NoError(t, st.MarkAlertSent(ctx(), a[0].ID, now))
	require.NoError(t, st.MarkAlertFailed(ctx(), a[1].ID, "boom", now.Add(time.Minute), true))
	require.NoError(t, st.MarkAlertSent(ctx(), a[2].ID, now.Add(48*time.Hour)))
	require.NoError(t, st.MarkAlertFailed(ctx(), a[3].ID, "boom", now.Add(48*time.Hour), true))
	require.NoError(t, st.MarkAlertFailed(ctx(), a[4].ID, "later", now.Add(time.Minute), false))

	byEvent := func() map[string]store.Alert {
		all, err := st.ListAlerts(ctx(), false, 100)
		require.NoError(t, err)
		m := map[string]store.Alert{}
		for _, a := range all {
			m[a.Event] = a
		}
		return m
	}
	m := byEvent()
	require.Len(t, m, 5)
	var p map[string]any
	require.NoError(t, json.Unmarshal(m["sent-old"].Payload, &p))
	assert.Equal(t, map[string]any{"event": "login.vpn", "userId": "u1", "ip": "192.0.2.1"}, p, "the names are dropped when sent")
	assert.JSONEq(t, `"not an object"`, string(m["sent-new"].Payload), "a payload that is not an object is kept")
	assert.Contains(t, string(m["dead-old"].Payload), "alice@example.com", "an undelivered alert keeps what it needs to be retried")
	assert.Contains(t, string(m["pending"].Payload), "alice@example.com")

	_, err = st.Purge(ctx(), now.Add(24*time.Hour))
	require.NoError(t, err)
	m = byEvent()
	assert.NotContains(t, m, "sent-old")
	assert.NotContains(t, m, "dead-old", "dead-lettered alerts are purged at retention too")
	assert.Contains(t, m, "sent-new")
	assert.Contains(t, m, "dead-new")
	assert.Contains(t, m, "pending", "a pending alert is never purged")

	// A retried dead alert counts from the retry.
	require.NoError(t, st.RetryAlert(ctx(), a[3].ID, now.Add(72*time.Hour)))
	c, err := st.ClaimAlerts(ctx(), "r2", 10, now.Add(72*time.Hour), time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 2)
	_, err = st.Purge(ctx(), now.Add(60*time.Hour))
	require.NoError(t, err)
	m = byEvent()
	assert.NotContains(t, m, "sent-new")
	assert.Contains(t, m, "dead-new", "retried after the bound")
	assert.Contains(t, m, "pending")
}
