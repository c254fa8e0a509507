package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestLogWriteHoldsLock: appending to the revocation log is only possible
// through a logTx (append is its method, and logWrite is the one place
// that makes one), so what remains to check is that logWrite's transaction
// holds the log lock while the appends run. SQLite needs no lock: its
// single writer connection serialises appends.
func TestLogWriteHoldsLock(t *testing.T) {
	st := storetest.OpenPostgres(t)
	held, err := store.LogLockHeld(context.Background(), st)
	require.NoError(t, err)
	assert.True(t, held, "the revocation-log advisory lock is held inside logWrite")
}

// TestLogAnalyzedAsItGrows: on PostgreSQL the revocation log is
// re-ANALYZEd each time appends have grown it by as many rows as its
// statistics describe (at least 1,000), through either append path (a
// logWrite transaction, a pipelined group of revocations): a prepared
// statement's generic plan, made while the log was empty, is then
// replanned instead of scanning the whole log in every append.
func TestLogAnalyzedAsItGrows(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenPostgres(t)
	now := time.Now()
	appended := 0
	logWrite := func(n int) {
		changes := make([]protocol.Change, n)
		for i := range changes {
			changes[i] = protocol.Change{Op: protocol.OpRevoke, Key: fmt.Sprintf("fp:grow-%d", appended+i), Exp: now.Add(time.Hour).Unix(), At: now.Unix()}
		}
		require.NoError(t, store.AppendChanges(ctx, st, changes, now))
		appended += n
	}
	pipelined := func(n int) {
		for n > 0 {
			keys := make([]string, 0, 16)
			for ; len(keys) < 16 && n > 0; n-- {
				keys = append(keys, fmt.Sprintf("fp:grow-%d", appended))
				appended++
			}
			require.NoError(t, st.RevokeKeys(ctx, keys, protocol.ReasonLogout, now.Add(time.Hour), now))
		}
	}
	for _, step := range []struct {
		name   string
		append func(n int)
		n      int
		want   float64 // rows the statistics describe; < 0: never analyzed
	}{
		// Each step's last append is the one that reaches (or not) its
		// threshold, so that no append races the ANALYZE it starts.
		{"below the least growth", logWrite, 600, -1},
		{"reaching it, pipelined", pipelined, 400, 1000},
		{"less than the log had", logWrite, 999, 1000},
		{"as much as the log had", pipelined, 1, 2000},
	} {
		step.append(step.n)
		rows, err := store.LogStatistics(ctx, st)
		require.NoError(t, err)
		if step.want < 0 {
			assert.Less(t, rows, float64(0), "%s: %d entries, not analyzed", step.name, appended)
		} else {
			assert.Equal(t, step.want, rows, "%s: %d entries", step.name, appended)
		}
	}
}

// A subject changed twice in one transaction (two grouped revocations of
// one key, a block then an unblock) keeps one latest entry, the later:
// the snapshot, built from latest entries, lists it once.
func TestAppendChangesSameSubjectTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		exp := now.Add(time.Hour).Unix()
		require.NoError(t, store.AppendChanges(ctx, st, []protocol.Change{
			{Op: protocol.OpRevoke, Key: "fp:x", Exp: exp, Reason: protocol.ReasonLogout},
			{Op: protocol.OpBlock, User: "u1", Reason: protocol.ReasonBlocked},
			{Op: protocol.OpRevoke, Key: "fp:y", Exp: exp, Reason: protocol.ReasonLogout},
			{Op: protocol.OpRevoke, Key: "fp:x", Exp: exp + 60, Reason: protocol.ReasonManual},
			{Op: protocol.OpUnblock, User: "u1"},
		}, now))
		epoch, err := st.Epoch(ctx)
		require.NoError(t, err)
		snap, err := st.Changes(ctx, epoch, 0, 100, now)
		require.NoError(t, err)
		var got []string
		for _, c := range snap.Changes {
			got = append(got, c.Op+" "+c.Key+c.User+" "+c.Reason)
		}
		assert.Equal(t, []string{"revoke fp:y logout", "revoke fp:x manual", "unblock u1 "}, got)
	})
}

type waiter interface {
	WaitChanges(ctx context.Context, epoch string, cursor int64, limit int, wait time.Duration, now func() time.Time) (protocol.SyncPage, error)
}

// TestFeedStaleSnapshot: a Changes call whose snapshot is older than the
// in-memory feed (stalled between its head query and the feed lock while
// another reader brought the feed further: a loaded machine) must not take
// the feed back to its snapshot. The feed is what long-polls answer from
// and nothing would correct it before the next change: the proxy's
// long-poll would answer "nothing new" for a committed revocation, again
// and again (the e2e flake at load: a revocation not enforced in 15 s).
func TestFeedStaleSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		w, ok := st.(waiter)
		require.True(t, ok)
		now := time.Now()
		epoch, err := st.Epoch(ctx)
		require.NoError(t, err)
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:a"}, protocol.ReasonLogout, now.Add(time.Hour), now))
		snap, err := st.Changes(ctx, epoch, 0, 100, now)
		require.NoError(t, err)
		require.Equal(t, []string{"fp:a"}, store.KeysOf(snap))

		// A reader takes its snapshot, then stalls.
		finish, err := store.BeginDelayedChanges(ctx, st)
		require.NoError(t, err)
		// fp:b is committed; another reader brings the feed to it.
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:b"}, protocol.ReasonLogout, now.Add(time.Hour), now))
		d, err := st.Changes(ctx, epoch, snap.Cursor, 100, now)
		require.NoError(t, err)
		require.Equal(t, []string{"fp:b"}, store.KeysOf(d))
		// The stalled reader goes on, from the cursor fp:b brought: its
		// snapshot lacks fp:b, yet this is no restore (no snapshot).
		late, err := finish(epoch, d.Cursor, 100, now)
		require.NoError(t, err)
		assert.False(t, late.Reset, "a reader's older snapshot is not a restore: %+v", late)
		assert.Empty(t, late.Changes)
		assert.Equal(t, d.Cursor, late.Cursor)

		// The proxy long-polls from before fp:b (its answer to the
		// other reader's call is not in yet): fp:b, at once.
		start := time.Now()
		p, err := w.WaitChanges(ctx, epoch, snap.Cursor, 100, 3*time.Second, time.Now)
		require.NoError(t, err)
		assert.Equal(t, []string{"fp:b"}, store.KeysOf(p), "the feed went back to a stale snapshot")
		assert.Less(t, time.Since(start), 2*time.Second, "answered by the wait's timer: the feed went back")
	})
}

// TestFeedAfterRestore: compaction never removes the log's head, so a
// client's cursor past the head means the store went back (restored from
// a backup): the feed answers with a snapshot, not with an empty delta
// that would leave the client waiting for seqs it already passed.
func TestFeedAfterRestore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		now := time.Now()
		epoch, err := st.Epoch(ctx)
		require.NoError(t, err)
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:a"}, protocol.ReasonLogout, now.Add(time.Minute), now))
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:b"}, protocol.ReasonLogout, now.Add(time.Minute), now))
		snap, err := st.Changes(ctx, epoch, 0, 100, now)
		require.NoError(t, err)
		head := snap.Cursor

		// Everything expired and compacted: the head entry stays.
		later := now.Add(time.Hour)
		_, err = st.Compact(ctx, later)
		require.NoError(t, err)
		d, err := st.Changes(ctx, epoch, head, 100, later)
		require.NoError(t, err)
		assert.False(t, d.Reset, "the cursor is still the head: a delta")
		assert.Equal(t, head, d.Cursor)
		assert.Empty(t, d.Changes)

		// A cursor past the head: the store went back.
		r, err := st.Changes(ctx, epoch, head+5, 100, now)
		require.NoError(t, err)
		assert.True(t, r.Reset, "a cursor past the head gets a snapshot")
		assert.LessOrEqual(t, r.Cursor, head)
	})
}

// BenchmarkChanges measures the store alone (no HTTP): a snapshot of
// 20,000 live revocations and a delta of 1,000.
func BenchmarkChanges(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			st := be.Open(b)
			ctx := context.Background()
			now := time.Now()
			keys := make([]string, 20_000)
			for i := range keys {
				keys[i] = fmt.Sprintf("fp:bench-%d", i)
			}
			require.NoError(b, st.RevokeKeys(ctx, keys, protocol.ReasonLogout, now.Add(time.Hour), now))
			epoch, _ := st.Epoch(ctx)
			b.Run("snapshot20k", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p, err := st.Changes(ctx, epoch, 0, store.MaxChangesLimit, now)
					if err != nil || len(p.Changes) != 20_000 {
						b.Fatal(err, len(p.Changes))
					}
				}
			})
			snap, err := st.Changes(ctx, epoch, 0, store.MaxChangesLimit, now)
			if err != nil || len(snap.Changes) != 20_000 {
				b.Fatal(err, len(snap.Changes))
			}
			from := snap.Changes[18_999].Seq // the last 1,000 follow (seqs follow the clock: not 19,000)
			b.Run("delta1000", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p, err := st.Changes(ctx, epoch, from, 1000, now)
					if err != nil || len(p.Changes) != 1000 {
						b.Fatal(err, len(p.Changes))
					}
				}
			})
		})
	}
}
