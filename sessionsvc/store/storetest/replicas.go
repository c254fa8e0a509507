package storetest

import (
	"testing"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Replicas opens n store handles on the database at url, as n replicas of
// sessionsvc would hold; they are closed at the end of the test.
func Replicas(tb testing.TB, url string, n int) []store.Store {
	tb.Helper()
	out := make([]store.Store, n)
	for i := range out {
		out[i] = OpenURL(tb, url)
	}
	return out
}
