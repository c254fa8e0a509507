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

// A subject changed twice in one transaction (two grouped revocations of
// one key, a block then an unblock) keeps one latest entry, the later:
// the snapshot, built from latest entries, lists it once.
func TestAppendChangesSameSubjectTwice(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
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
}
