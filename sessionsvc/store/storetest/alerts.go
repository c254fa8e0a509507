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

// testRetryAlert: a retry applies to a dead-lettered alert only, and gives
// it a fresh start (attempts 0, due at once). A pending alert keeps its
// lease (a replica may be sending it: no second replica gets it) and a
// sent one stays sent; both are ErrConflict, an unknown id ErrNotFound.
func testRetryAlert(t *testing.T, st store.Store) {
	now := t0
	require.NoError(t, st.EnqueueAlerts(ctx(), []store.Alert{
		{Event: "leased", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "sent", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "dead", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "waiting", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now.Add(time.Hour)},
	}))
	a, err := st.ClaimAlerts(ctx(), "r1", 10, now, time.Minute)
	require.NoError(t, err)
	require.Len(t, a, 3)
	leased, sent, dead := a[0], a[1], a[2]
	require.NoError(t, st.MarkAlertSent(ctx(), sent.ID, now))
	for i := range 8 {
		require.NoError(t, st.MarkAlertFailed(ctx(), dead.ID, "boom", now.Add(time.Duration(i)*time.Minute), i == 7))
	}
	all, err := st.ListAlerts(ctx(), false, 10)
	require.NoError(t, err)
	require.Len(t, all, 4)
	waiting := all[0]
	require.Equal(t, "waiting", waiting.Event)

	assert.ErrorIs(t, st.RetryAlert(ctx(), leased.ID, now), store.ErrConflict, "pending and leased")
	assert.ErrorIs(t, st.RetryAlert(ctx(), waiting.ID, now), store.ErrConflict, "pending, waiting for its next try")
	assert.ErrorIs(t, st.RetryAlert(ctx(), sent.ID, now), store.ErrConflict, "sent")
	assert.ErrorIs(t, st.RetryAlert(ctx(), 424242, now), store.ErrNotFound)
	b, err := st.ClaimAlerts(ctx(), "r2", 10, now.Add(time.Second), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, b, "the refused retry left the lease alone: no second replica gets the alert")
	got, err := st.ListAlerts(ctx(), false, 10)
	require.NoError(t, err)
	for _, g := range got {
		if g.ID == sent.ID {
			assert.NotNil(t, g.SentAt, "a sent alert stays sent")
		}
		if g.ID == waiting.ID {
			assert.True(t, g.NextAttempt.Equal(now.Add(time.Hour)), "a pending alert keeps its schedule")
		}
	}

	later := now.Add(3 * time.Hour)
	require.NoError(t, st.RetryAlert(ctx(), dead.ID, later))
	got, err = st.ListAlerts(ctx(), false, 10)
	require.NoError(t, err)
	for _, g := range got {
		if g.ID == dead.ID {
			assert.False(t, g.Dead)
			assert.Equal(t, 0, g.Attempts, "the try budget starts again")
			assert.True(t, g.NextAttempt.Equal(later), "due at once: %v", g.NextAttempt)
		}
	}
	assert.ErrorIs(t, st.RetryAlert(ctx(), dead.ID, later), store.ErrConflict, "queued again: no longer dead")
	c, err := st.ClaimAlerts(ctx(), "r3", 10, later, time.Minute)
	require.NoError(t, err)
	ids := map[int64]bool{}
	for _, x := range c {
		ids[x.ID] = true
	}
	assert.True(t, ids[dead.ID], "the retried alert is claimed")
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
