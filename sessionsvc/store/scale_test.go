package store_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// A termination never waits for an activity flush in progress (issue 12
// item 11): the flush writes short transactions (and on SQLite yields the
// write connection to a waiting revocation), so the termination of a
// session the flush has already written completes while the flush goes on.
// Before, one flush was one transaction holding the writer (SQLite) or the
// rows it had updated (PostgreSQL) to its end.
func TestRevocationDoesNotWaitForActivity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		// Enough sessions that the flush (about 18,000 marks: 18 short
		// transactions on PostgreSQL) outlasts a termination many times
		// over even on a loaded machine: with 4,800 marks a termination
		// delayed by load could end after the flush without having waited
		// for it.
		opts := store.SeedOptions{N: 30000, Now: now}
		require.NoError(t, store.Seed(ctx, st, opts, nil))
		var keys []string
		for i := 0; i < opts.N; i++ {
			if ss, k := store.SeedSession(i, opts); ss.Active {
				keys = append(keys, k.Key)
			}
		}
		sort.Strings(keys) // the order a flush writes them in
		at := now.Add(time.Minute)
		marks := make([]store.ActivityMark, len(keys))
		for i, k := range keys {
			marks[i] = store.ActivityMark{Key: k, At: at}
		}
		type result struct {
			n   int
			err error
			end time.Time
		}
		flushed := make(chan result, 1)
		go func() {
			n, err := st.RecordActivity(ctx, marks)
			flushed <- result{n, err, time.Now()}
		}()
		// The flush has written (committed) its first key's session.
		var first *store.Session
		require.Eventually(t, func() bool {
			s, err := st.FindSessionByKeys(ctx, []string{keys[0]})
			first = s
			return err == nil && s.LastActive.Equal(at)
		}, 30*time.Second, time.Millisecond)
		ended, err := st.EndSessions(ctx, store.EndFilter{SessionIDs: []string{first.ID}}, protocol.ReasonManual, true, now)
		endedAt := time.Now()
		require.NoError(t, err)
		require.Equal(t, []string{first.ID}, ended)
		r := <-flushed
		require.NoError(t, r.err)
		assert.True(t, endedAt.Before(r.end), "the termination waited for the whole flush (%v after it)", endedAt.Sub(r.end))
		// Nothing was lost to the short transactions: every active
		// session moved forward.
		assert.Equal(t, len(keys), r.n)
		last, err := st.FindSessionByKeys(ctx, []string{keys[len(keys)-1]})
		require.NoError(t, err)
		assert.Equal(t, at, last.LastActive)
	})
}

// Seed writes what SeedSession describes, and counts are maintained.
func TestSeedAndCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		opts := store.SeedOptions{N: 1234, Now: time.Now().UTC()}
		require.NoError(t, store.Seed(ctx, st, opts, nil))
		active := 0
		for i := 0; i < opts.N; i++ {
			want, k := store.SeedSession(i, opts)
			if want.Active {
				active++
			}
			if i%97 != 0 {
				continue
			}
			got, err := st.FindSessionByKeys(ctx, []string{k.Key})
			require.NoError(t, err)
			assert.Equal(t, want.ID, got.ID)
			assert.Equal(t, want.UserID, got.UserID)
			assert.Equal(t, want.Active, got.Active)
			assert.Equal(t, want.LastActive.UnixMilli(), got.LastActive.UnixMilli())
			assert.Equal(t, want.Geo.Country, got.Geo.Country)
		}
		all, err := st.ListSessions(ctx, store.SessionQuery{Limit: 1})
		require.NoError(t, err)
		assert.Equal(t, opts.N, all.Total)
		assert.Equal(t, store.CountMaintained, all.Count)
		act, err := st.ListSessions(ctx, store.SessionQuery{ActiveOnly: true, Limit: 1})
		require.NoError(t, err)
		assert.Equal(t, active, act.Total)
		// Counts follow terminations and deletions.
		s0, _ := store.SeedSession(0, opts)
		_, err = st.EndSessions(ctx, store.EndFilter{UserID: s0.UserID}, protocol.ReasonManual, true, time.Now())
		require.NoError(t, err)
		require.NoError(t, st.DeleteSession(ctx, s0.ID, time.Now()))
		exact, err := st.ListSessions(ctx, store.SessionQuery{ActiveOnly: true, Limit: 1, UserID: "", ExactTotal: true, Status: store.StatusAny})
		require.NoError(t, err)
		var counted int
		for p, after := 0, ""; ; p++ {
			pg, err := st.ListSessions(ctx, store.SessionQuery{ActiveOnly: true, Limit: 500, After: after})
			require.NoError(t, err)
			counted += len(pg.Sessions)
			if pg.Next == "" {
				break
			}
			after = pg.Next
		}
		assert.Equal(t, counted, exact.Total, "maintained active count after terminations")
		all, err = st.ListSessions(ctx, store.SessionQuery{Limit: 1})
		require.NoError(t, err)
		assert.Equal(t, opts.N-1, all.Total)
	})
}

// Keyset pages, walked to the end, are the offset listing, for every sort
// and direction (ties broken by id), with and without a status filter.
func TestKeysetPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		opts := store.SeedOptions{N: 600, Users: 40, Now: time.Now().UTC()}
		require.NoError(t, store.Seed(ctx, st, opts, nil))
		for _, sortBy := range []string{"loginTime", "lastActive", "userId", "ip", "securityScore"} {
			for _, desc := range []bool{false, true} {
				for _, status := range []store.Status{store.StatusAny, store.StatusLoggedOut, store.StatusActive, store.StatusIdle} {
					q := store.SessionQuery{Sort: sortBy, Desc: desc, Status: status, IdleBefore: opts.Now.Add(-24 * time.Hour)}
					q.Limit = 1000
					all, err := st.ListSessions(ctx, q)
					require.NoError(t, err)
					var want, got []string
					for _, s := range all.Sessions {
						want = append(want, s.ID)
					}
					q.Limit = 37
					for pages := 0; ; pages++ {
						require.Less(t, pages, 100)
						p, err := st.ListSessions(ctx, q)
						require.NoError(t, err)
						for _, s := range p.Sessions {
							got = append(got, s.ID)
						}
						if p.Next == "" {
							break
						}
						q.After = p.Next
					}
					assert.Equal(t, want, got, "sort %s desc %v status %q", sortBy, desc, status)
				}
			}
		}
		// A cursor is only good for its own sort; garbage is refused.
		p, err := st.ListSessions(ctx, store.SessionQuery{Sort: "loginTime", Limit: 5})
		require.NoError(t, err)
		require.NotEmpty(t, p.Next)
		_, err = st.ListSessions(ctx, store.SessionQuery{Sort: "userId", Limit: 5, After: p.Next})
		assert.ErrorIs(t, err, store.ErrBadCursor)
		for _, bad := range []string{"x", "bm90IGpzb24", "WyJsb2dpbl90aW1lIixmYWxzZSwiYSIsIngiXQ"} {
			_, err = st.ListSessions(ctx, store.SessionQuery{Sort: "loginTime", Limit: 5, After: bad})
			assert.ErrorIs(t, err, store.ErrBadCursor, bad)
		}
	})
}

// Sweeps run in chunks (bulkChunk sessions per transaction) and still end
// and purge everything they select, with a revocation for every key.
func TestSweepsInChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		opts := store.SeedOptions{N: 3000, Now: now}
		require.NoError(t, store.Seed(ctx, st, opts, nil))
		active := 0
		for i := 0; i < opts.N; i++ {
			if ss, _ := store.SeedSession(i, opts); ss.Active {
				active++
			}
		}
		require.Greater(t, active, 1000, "several chunks")
		ep, err := st.Epoch(ctx)
		require.NoError(t, err)
		before, err := st.Changes(ctx, ep, 0, 10, now)
		require.NoError(t, err)
		ended, err := st.EndIdle(ctx, now.Add(time.Hour), now)
		require.NoError(t, err)
		assert.Len(t, ended, active)
		p, err := st.ListSessions(ctx, store.SessionQuery{ActiveOnly: true, Limit: 1})
		require.NoError(t, err)
		assert.Zero(t, p.Total)
		after, err := st.Changes(ctx, ep, before.Cursor, store.MaxChangesLimit, now)
		require.NoError(t, err)
		assert.Len(t, after.Changes, active, "one revocation per key")
		n, err := st.Purge(ctx, now.Add(2*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, opts.N, n)
		p, err = st.ListSessions(ctx, store.SessionQuery{Limit: 1})
		require.NoError(t, err)
		assert.Zero(t, p.Total)
	})
}
