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
