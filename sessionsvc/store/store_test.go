package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestContract(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, b.Open)
		})
	}
}

func TestReopenKeepsEpochAndSchema(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			// Two replicas starting at once apply the migrations once.
			var wg sync.WaitGroup
			stores := make([]store.Store, 2)
			errs := make([]error, 2)
			for i := range stores {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					stores[i], errs[i] = store.Open(context.Background(), u, nil)
				}(i)
			}
			wg.Wait()
			for i := range stores {
				require.NoError(t, errs[i])
				defer stores[i].Close()
			}
			e1, err := stores[0].Epoch(context.Background())
			require.NoError(t, err)
			e2, err := stores[1].Epoch(context.Background())
			require.NoError(t, err)
			assert.Equal(t, e1, e2)
			require.NoError(t, stores[0].Ping(context.Background()))
		})
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	_, err := store.Open(context.Background(), "mysql://x", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsupported DATABASE_URL")
	_, err = store.Open(context.Background(), "postgres://u:secret@127.0.0.1:1/x?connect_timeout=1", nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "passwords never reach error messages")
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(context.Background(), b.URL(t), nil)
			require.NoError(t, err)
			require.NoError(t, st.Close())
			_, err = st.ListSessions(context.Background(), store.SessionQuery{})
			assert.ErrorIs(t, err, store.ErrUnavailable)
			assert.ErrorIs(t, st.Ping(context.Background()), store.ErrUnavailable)
			_, err = st.EndSessions(context.Background(), store.EndFilter{UserID: "x"}, "manual", true, storetestNow())
			assert.ErrorIs(t, err, store.ErrUnavailable)
		})
	}
}

func storetestNow() time.Time { return time.Now() }
