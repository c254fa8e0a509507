package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Run runs the contract suite; open returns a fresh, empty store.
func Run(t *testing.T, open func(testing.TB) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Epoch", testEpoch},
		{"CreateGetFind", testCreateGetFind},
		{"ListSessions", testListSessions},
		{"ListStatusSorts", testListStatusSorts},
		{"ListPaging", testListPaging},
		{"SearchLookup", testSearchLookup},
		{"SearchPage", SearchPage},
		{"EndSessions", testEndSessions},
		{"Refresh", testRefresh},
		{"CheckRefresh", testCheckRefresh},
		{"SessionLookups", testSessionLookups},
		{"RecordActivity", testRecordActivity},
		{"ActivityReadThrough", testActivityReadThrough},
		{"ActivityMergeKeepsNewest", testActivityMergeKeepsNewest},
		{"ActivityIdleReaping", testActivityIdleReaping},
		{"ChangesDeltaAndSnapshot", testChanges},
		{"BlockAndNotBefore", testBlock},
		{"BlockedUserGetsNoSession", testBlockedUserGetsNoSession},
		{"Compact", testCompact},
		{"Lifecycle", testLifecycle},
		{"DeleteSession", testDelete},
		{"DeleteEnded", testDeleteEnded},
		{"AdminTokens", testAdminTokens},
		{"Settings", testSettings},
		{"Alerts", testAlerts},
		{"RetryAlert", testRetryAlert},
		{"AlertRetention", testAlertRetention},
		{"FailedLogins", testFailedLogins},
		{"LoginCounters", testLoginCounters},
		{"LoginCountersConcurrent", testLoginCountersConcurrent},
		{"LoginCountersProgressive", testLoginCountersProgressive},
		{"LoginFailuresBatch", testLoginFailuresBatch},
		{"LoginAttempts", testLoginAttempts},
		{"LoginRefusals", testLoginRefusals},
		{"ConcurrentAppendsKeepFeedOrder", testConcurrentFeed},
		{"RevokeKeysBatch", testRevokeKeysBatch},
		{"DiscoverSessions", testDiscoverSessions},
		{"DiscoverConcurrently", testDiscoverConcurrently},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ctx() context.Context { return context.Background() }

// newSession stores a session for user with keys sid:<id>, fp:a-<id>, fp:r-<id>.
func newSession(t *testing.T, st store.Store, user, name string, login time.Time) *store.Session {
	t.Helper()
	s := &store.Session{
		UserID: user, IP: "10.0.0." + fmt.Sprint(len(name)), UserAgent: "Mozilla/5.0 " + name,
		LoginTime: login, LastActive: login, DeviceType: "desktop", BrowserName: "Firefox 130", OSName: "Linux",
		Geo: &store.GeoLocation{Country: "Germany", CountryCode: "DE", City: "Berlin"}, SecurityScore: 90,
		ScoreReasons: []string{"new device"}, Route: "/api/auth/local",
	}
	keys := []store.SessionKey{
		{Key: "sid:" + name, Kind: store.KeySession, ExpiresAt: login.Add(time.Hour)},
		{Key: "fp:a-" + name, Kind: store.KeyAccess, ExpiresAt: login.Add(time.Hour)},
		{Key: "fp:r-" + name, Kind: store.KeyRefresh, ExpiresAt: login.Add(24 * time.Hour)},
	}
	require.NoError(t, st.CreateSession(ctx(), s, keys, nil))
	require.NotEmpty(t, s.ID)
	return s
}

func allChanges(t *testing.T, st store.Store, cursor int64, now time.Time) []protocol.Change {
	t.Helper()
	epoch, err := st.Epoch(ctx())
	require.NoError(t, err)
	var out []protocol.Change
	for {
		p, err := st.Changes(ctx(), epoch, cursor, 1000, now)
		require.NoError(t, err)
		out = append(out, p.Changes...)
		cursor = p.Cursor
		if !p.More {
			return out
		}
	}
}

func testEpoch(t *testing.T, st store.Store) {
	e1, err := st.Epoch(ctx())
	require.NoError(t, err)
	assert.Len(t, e1, 24)
	e2, err := st.Epoch(ctx())
	require.NoError(t, err)
	assert.Equal(t, e1, e2)
	require.NoError(t, st.Ping(ctx()))
}
