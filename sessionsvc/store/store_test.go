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

// TestSearchPageWalksSearchTable runs storetest.SearchPage on PostgreSQL
// with the page read through session_search (the path of a common term at
// scale, which the suite's small tables never take on their own).
func TestSearchPageWalksSearchTable(t *testing.T) {
	st := storetest.OpenPostgres(t)
	store.WalkSearchTable(st)
	storetest.SearchPage(t, st)
}

// TestSearchPageReadsSessionsByKey: on PostgreSQL, the sessions of a search
// page walked through session_search are read by their primary key, not by
// reading every session to join the page's ids (a hash join the planner
// chose for id IN (…): 40 ms at 100k sessions).
func TestSearchPageReadsSessionsByKey(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenPostgres(t)
	store.WalkSearchTable(st)
	now := time.Now().UTC()
	require.NoError(t, store.Seed(ctx, st, store.SeedOptions{N: 2000, Now: now}, nil))
	plan, err := store.SearchPagePlan(ctx, st, store.SessionQuery{Search: "france", Sort: "loginTime", Desc: true, Limit: 1000})
	require.NoError(t, err)
	assert.NotContains(t, plan, "Seq Scan on sessions", plan)
	assert.Contains(t, plan, "sessions_pkey", plan)
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

// TestFeedAcrossReplicas: two stores on one database (two replicas) each
// serve the feed from their cache; what one writes, the other serves.
func TestFeedAcrossReplicas(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			u := b.URL(t)
			a, r := storetest.OpenURL(t, u), storetest.OpenURL(t, u)
			now := time.Now()
			epoch, _ := r.Epoch(ctx)

			require.NoError(t, a.RevokeKeys(ctx, []string{"fp:1", "fp:2"}, "logout", now.Add(time.Hour), now))
			snap, err := r.Changes(ctx, epoch, 0, 100, now) // builds r's cache
			require.NoError(t, err)
			require.Len(t, snap.Changes, 2)

			require.NoError(t, a.SetBlocked(ctx, "u", true, now))
			require.NoError(t, a.RevokeKeys(ctx, []string{"fp:1"}, "reuse", now.Add(2*time.Hour), now)) // supersedes
			d, err := r.Changes(ctx, epoch, snap.Cursor, 100, now)
			require.NoError(t, err)
			require.Len(t, d.Changes, 2)
			assert.Equal(t, "block", d.Changes[0].Op)
			assert.Equal(t, "fp:1", d.Changes[1].Key)

			require.NoError(t, a.SetBlocked(ctx, "u", false, now))
			snap2, err := r.Changes(ctx, epoch, 0, 100, now)
			require.NoError(t, err)
			var got []string
			for _, c := range snap2.Changes {
				got = append(got, c.Op+":"+c.Key+c.User+":"+c.Reason)
			}
			assert.Equal(t, []string{"revoke:fp:2:logout", "revoke:fp:1:reuse", "unblock:u:"}, got,
				"superseded entries are gone; the unblock is listed (a lift is not the same as absent)")

			// Compaction by one replica; expiry honoured by the other's cache.
			_, err = a.Compact(ctx, now.Add(90*time.Minute))
			require.NoError(t, err)
			snap3, err := r.Changes(ctx, epoch, 0, 100, now.Add(90*time.Minute))
			require.NoError(t, err)
			require.Len(t, snap3.Changes, 2)
			assert.Equal(t, "fp:1", snap3.Changes[0].Key)
			assert.Equal(t, "unblock", snap3.Changes[1].Op)
			// An old cursor the cache cannot serve falls back to the database.
			first := snap.Changes[0].Seq
			old, err := r.Changes(ctx, epoch, first, 100, now.Add(90*time.Minute))
			require.NoError(t, err)
			assert.False(t, old.Reset)
			for _, c := range old.Changes {
				assert.Greater(t, c.Seq, first)
			}
		})
	}
}

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

// TestRestore: a store restored from a backup (its epoch kept, its log's
// sequence back at the backup's head) never makes a proxy skip the entries
// appended after the restore, whether sessionsvc reopened it or not.
func TestRestore(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("reopened", func(t *testing.T) { storetest.RestoreFromBackup(t, b) })
			t.Run("running", func(t *testing.T) { storetest.RestoreUnderRunningStore(t, b) })
		})
	}
}

// TestRefusalsMigration: the refused-logins record carries over the wrong
// credentials on record (see storetest.RefusalsMigration).
func TestRefusalsMigration(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { storetest.RefusalsMigration(t, b) })
	}
}
