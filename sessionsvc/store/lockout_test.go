package store_test

import (
	"testing"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestLoginCountersAcrossReplicas: failures spread over two stores on one
// database (two replicas) lock after exactly the threshold, 20 of 20 times.
func TestLoginCountersAcrossReplicas(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			replicas := []store.Store{storetest.OpenURL(t, u), storetest.OpenURL(t, u)}
			for range 20 {
				storetest.ConcurrentFailures(t, replicas, 5, 16)
			}
		})
	}
}
