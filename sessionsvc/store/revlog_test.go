package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
