package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestLoginCountersAcrossReplicas: failures spread over two stores on one
// database (two replicas) lock after exactly the threshold, 20 of 20 times.
func TestLoginCountersAcrossReplicas(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			var replicas []store.Store
			for range 2 {
				st, err := store.Open(context.Background(), u, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = st.Close() })
				replicas = append(replicas, st)
			}
			for range 20 {
				storetest.ConcurrentFailures(t, replicas, 5, 16)
			}
		})
	}
}
