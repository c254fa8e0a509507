package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestLogSeqFollowsClock: an entry's seq is above the clock in
// microseconds when it is written; a clock that goes back (in a running
// store, or at a reopen) never moves the sequence back.
func TestLogSeqFollowsClock(t *testing.T) {
	eachReopenable(t, func(t *testing.T, u string, st store.Store, epoch string) {
		ctx := context.Background()
		now := time.Now()
		gaps := store.SeqGaps(st)
		require.Len(t, gaps, 1, "the open of an empty log skips from 0 to the clock")
		assert.Equal(t, int64(0), gaps[0][0])
		assert.GreaterOrEqual(t, gaps[0][1], now.Add(-time.Minute).UnixMicro())

		head := func(st store.Store) int64 {
			p, err := st.Changes(ctx, epoch, 0, 1000, now)
			require.NoError(t, err)
			return p.Cursor
		}
		// Both append paths: a group of revocations (pipelined on
		// PostgreSQL) and a logWrite transaction.
		appendOne := func(st store.Store, key string, viaTx bool) int64 {
			if viaTx {
				require.NoError(t, store.AppendChanges(ctx, st, []protocol.Change{
					{Op: protocol.OpRevoke, Key: key, Exp: now.Add(time.Hour).Unix(), Reason: protocol.ReasonManual}}, now))
			} else {
				require.NoError(t, st.RevokeKeys(ctx, []string{key}, protocol.ReasonLogout, now.Add(time.Hour), now))
			}
			return head(st)
		}

		for _, viaTx := range []bool{false, true} {
			ahead := time.Now().Add(time.Hour)
			if viaTx {
				ahead = ahead.Add(time.Hour)
			}
			store.SetSeqClock(st, func() time.Time { return ahead })
			s1 := appendOne(st, "fp:ahead", viaTx)
			assert.Greater(t, s1, ahead.UnixMicro(), "the seq is above the clock")
			assert.Less(t, s1, ahead.UnixMicro()+1000)

			store.SetSeqClock(st, func() time.Time { return time.Now().Add(-time.Hour) })
			s2 := appendOne(st, "fp:behind", viaTx)
			assert.Equal(t, s1+1, s2, "a clock that went back leaves the sequence where it was")
		}
		last := head(st)

		// A reopen with the clock behind the log: no gap, no step back.
		st2 := storetest.OpenURL(t, u)
		assert.Equal(t, gaps, store.SeqGaps(st2), "no gap when the clock is behind the log")
		s3 := appendOne(st2, "fp:reopened", false)
		assert.Equal(t, last+1, s3)
	})
}

// TestReopenRecordsGap: each open moves the sequence to the clock and
// records the skipped range; a cursor inside it gets a snapshot, one at
// its low end (the head at the open) a delta.
func TestReopenRecordsGap(t *testing.T) {
	eachReopenable(t, func(t *testing.T, u string, st store.Store, epoch string) {
		ctx := context.Background()
		now := time.Now()
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:a"}, protocol.ReasonLogout, now.Add(time.Hour), now))
		p, err := st.Changes(ctx, epoch, 0, 100, now)
		require.NoError(t, err)
		h := p.Cursor
		time.Sleep(2 * time.Millisecond) // the clock passes the head

		st2 := storetest.OpenURL(t, u)
		gaps := store.SeqGaps(st2)
		require.Len(t, gaps, 2)
		assert.Equal(t, h, gaps[1][0])
		assert.Greater(t, gaps[1][1], h+1000)
		require.NoError(t, st2.RevokeKeys(ctx, []string{"fp:b"}, protocol.ReasonLogout, now.Add(time.Hour), now))

		d, err := st2.Changes(ctx, epoch, h, 100, now)
		require.NoError(t, err)
		assert.False(t, d.Reset)
		assert.Equal(t, []string{"fp:b"}, store.KeysOf(d))
		assert.Greater(t, d.Cursor, gaps[1][1])

		in, err := st2.Changes(ctx, epoch, h+1, 100, now)
		require.NoError(t, err)
		assert.True(t, in.Reset, "a cursor in a gap was handed out by a lost timeline")
		assert.ElementsMatch(t, []string{"fp:a", "fp:b"}, store.KeysOf(in))
		assert.Equal(t, d.Cursor, in.Cursor)
	})
}

// eachReopenable runs fn as a subtest on each backend with the URL of a
// fresh database (to open it again), a store open on it and its epoch.
func eachReopenable(t *testing.T, fn func(t *testing.T, u string, st store.Store, epoch string)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			st := storetest.OpenURL(t, u)
			epoch, err := st.Epoch(context.Background())
			require.NoError(t, err)
			fn(t, u, st, epoch)
		})
	}
}
