package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// No SQLite write transaction checkpoints (wal_autocheckpoint is off): the
// checkpointer copies the WAL back into the database file while the store
// is open. Closing the store twice is harmless.
func TestCheckpointerCopiesWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	st, err := store.Open(ctx, "sqlite://"+path, nil)
	require.NoError(t, err)
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	before := size()
	require.NoError(t, store.Seed(ctx, st, store.SeedOptions{N: 3000}, nil))
	require.Eventually(t, func() bool { return size() > before+1<<20 }, 20*time.Second, 10*time.Millisecond,
		"the seeded pages reach the database file")
	require.NoError(t, st.Close())
	require.NoError(t, st.Close())
}
