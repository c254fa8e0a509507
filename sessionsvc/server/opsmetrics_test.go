package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// downStore answers Ping with an error, as a lost database does.
type downStore struct {
	store.Store
	down bool
}

func (d *downStore) Ping(ctx context.Context) error {
	if d.down {
		return errors.New("connection refused")
	}
	return d.Store.Ping(ctx)
}

func TestOpsMetrics(t *testing.T) {
	ds := &downStore{Store: storetest.OpenSQLite(t)}
	e := newEnvWithStore(t, ds)
	reg := e.srv.Registry()
	gauge := func(name string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	assert.Equal(t, 1.0, gauge("meshsession_database_up"))
	assert.Equal(t, 0.0, gauge("meshsession_alerts_dead_letters"))

	// Two alerts, one dead-lettered.
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, ds.EnqueueAlerts(ctx, []store.Alert{
		{Event: "user.blocked", Channel: "webhook:x", Payload: []byte(`{}`), NextAttempt: now, CreatedAt: now},
		{Event: "user.blocked", Channel: "webhook:y", Payload: []byte(`{}`), NextAttempt: now, CreatedAt: now},
	}))
	list, err := ds.ListAlerts(ctx, false, 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.NoError(t, ds.MarkAlertFailed(ctx, list[0].ID, "410 Gone", now, true))

	// Fresh probes (the cached values live for a few seconds).
	fresh := func() {
		s, err := New(Config{Store: ds, InternalKey: testKey})
		require.NoError(t, err)
		reg = s.Registry()
	}
	fresh()
	assert.Equal(t, 1.0, gauge("meshsession_alerts_dead_letters"))
	ds.down = true
	fresh()
	assert.Equal(t, 0.0, gauge("meshsession_database_up"))
}
