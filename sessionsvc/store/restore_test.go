package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

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
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:a"}, "logout", now.Add(time.Minute), now))
		require.NoError(t, st.RevokeKeys(ctx, []string{"fp:b"}, "logout", now.Add(time.Minute), now))
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
