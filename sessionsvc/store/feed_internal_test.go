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

// TestFeedTailTrimming: when the in-memory tail is trimmed, deltas from
// cursors it still covers come from memory, older ones from the database,
// and both give the same answer.
func TestFeedTailTrimming(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"), nil)
	require.NoError(t, err)
	defer st.Close()
	s := st.(*sqlStore)
	s.feed.maxTail = 8
	now := time.Now()
	epoch, _ := st.Epoch(ctx)
	_, err = st.Changes(ctx, epoch, 0, 10, now) // build the cache on the empty log
	require.NoError(t, err)
	for i := 0; i < 30; i++ {
		require.NoError(t, st.RevokeKeys(ctx, []string{fmt.Sprintf("fp:%02d", i)}, protocol.ReasonLogout, now.Add(time.Hour), now))
		_, err = st.Changes(ctx, epoch, 1, 1, now) // refresh after every append
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, len(s.feed.tail), 10, "the tail is bounded")
	assert.Greater(t, s.feed.tailAfter, int64(0))

	all := func(cursor int64) []string {
		var keys []string
		for {
			p, err := st.Changes(ctx, epoch, cursor, 4, now)
			require.NoError(t, err)
			for _, c := range p.Changes {
				keys = append(keys, c.Key)
			}
			cursor = p.Cursor
			if !p.More {
				return keys
			}
		}
	}
	from0 := all(1) // mostly from the database
	require.Len(t, from0, 29)
	assert.Equal(t, "fp:01", from0[0])
	recent := all(s.feed.tailAfter) // from memory
	assert.Equal(t, from0[len(from0)-len(recent):], recent)
}
