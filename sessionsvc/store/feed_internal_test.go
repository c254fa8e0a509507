package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// openInternalStore opens a store on a fresh SQLite file, closed when the test
// ends, and returns it also as the implementation.
func openInternalStore(t *testing.T) (Store, *sqlStore) {
	t.Helper()
	st, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "f.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st, st.(*sqlStore)
}

// TestFeedTailTrimming: when the in-memory tail is trimmed, deltas from
// cursors it still covers come from memory, older ones from the database,
// and both give the same answer.
func TestFeedTailTrimming(t *testing.T) {
	ctx := context.Background()
	st, s := openInternalStore(t)
	s.feed.maxTail = 8
	now := time.Now()
	epoch, _ := st.Epoch(ctx)
	_, err := st.Changes(ctx, epoch, 0, 10, now) // build the cache on the empty log
	require.NoError(t, err)
	var first int64 // fp:00's seq
	for i := 0; i < 30; i++ {
		require.NoError(t, st.RevokeKeys(ctx, []string{fmt.Sprintf("fp:%02d", i)}, protocol.ReasonLogout, now.Add(time.Hour), now))
		head, err := s.refreshFeed(ctx) // refresh after every append
		require.NoError(t, err)
		if i == 0 {
			first = head
		}
	}
	assert.LessOrEqual(t, len(s.feed.tail), 10, "the tail is bounded")
	assert.Greater(t, s.feed.tailAfter, int64(0))

	all := func(cursor int64) []string {
		var keys []string
		for {
			p, err := st.Changes(ctx, epoch, cursor, 4, now)
			require.NoError(t, err)
			keys = append(keys, KeysOf(p)...)
			cursor = p.Cursor
			if !p.More {
				return keys
			}
		}
	}
	from0 := all(first) // mostly from the database
	require.Len(t, from0, 29)
	assert.Equal(t, "fp:01", from0[0])
	recent := all(s.feed.tailAfter) // from memory
	assert.Equal(t, from0[len(from0)-len(recent):], recent)
}

// TestCachedChangesShared: callers at one cursor get one page built once
// (the same changes), a caller at an older cursor its own, and an append
// makes the shared pages stale.
func TestCachedChangesShared(t *testing.T) {
	ctx := context.Background()
	st, s := openInternalStore(t)
	now := time.Now()
	epoch, _ := st.Epoch(ctx)
	revoke := func(key string) {
		t.Helper()
		require.NoError(t, st.RevokeKeys(ctx, []string{key}, protocol.ReasonLogout, now.Add(time.Hour), now))
		_, err := s.refreshFeed(ctx)
		require.NoError(t, err)
	}
	revoke("fp:0") // cursors from 1 on
	revoke("fp:a")
	c1 := s.feed.head
	revoke("fp:b")

	p1, ok := s.cachedChanges(epoch, c1, 10, now)
	require.True(t, ok)
	p2, ok := s.cachedChanges(epoch, c1, 10, now.Add(2*time.Second))
	require.True(t, ok)
	assert.Equal(t, []string{"fp:b"}, KeysOf(p1))
	assert.Same(t, &p1.Changes[0], &p2.Changes[0], "built once for both")
	assert.Equal(t, now.Unix(), p1.Now, "each answer has its own now")
	assert.Equal(t, now.Add(2*time.Second).Unix(), p2.Now)

	old, ok := s.cachedChanges(epoch, c1-1, 10, now)
	require.True(t, ok)
	assert.Equal(t, []string{"fp:a", "fp:b"}, KeysOf(old))
	lim, ok := s.cachedChanges(epoch, c1-1, 1, now)
	require.True(t, ok)
	assert.Equal(t, []string{"fp:a"}, KeysOf(lim))
	assert.True(t, lim.More)
	assert.Equal(t, c1, lim.Cursor)

	revoke("fp:c")
	p3, ok := s.cachedChanges(epoch, c1, 10, now)
	require.True(t, ok)
	assert.Equal(t, []string{"fp:b", "fp:c"}, KeysOf(p3), "an append makes the shared page stale")
	assert.Equal(t, s.feed.head, p3.Cursor)
	again, ok := s.cachedChanges(epoch, c1-1, 10, now)
	require.True(t, ok)
	assert.Equal(t, []string{"fp:a", "fp:b", "fp:c"}, KeysOf(again))
	assert.False(t, again.More)
}
