package revocation_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// encode renders p as JSON or in protocol's binary form.
func encode(t *testing.T, p protocol.SyncPage, binary bool) []byte {
	t.Helper()
	if !binary {
		return page(t, p)
	}
	b, err := protocol.AppendBinaryPage(nil, &p)
	require.NoError(t, err)
	return b
}

// TestSnapshotKeepsWhatTheStateHadSeen: a revocation this worker has seen
// survives a store reset (a new epoch's snapshot that lacks it) and a
// restore (a snapshot of the same epoch that lacks it) until it expires;
// only an explicit lift in the feed removes it.
func TestSnapshotKeepsWhatTheStateHadSeen(t *testing.T) {
	hour := exp(time.Hour)
	before := []protocol.Change{
		{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a", Exp: hour, Reason: protocol.ReasonManual},
		{Seq: 2, Op: protocol.OpRevoke, Key: "fp:b", Exp: hour, Reason: protocol.ReasonLogout},
		{Seq: 3, Op: protocol.OpBlock, User: "u1", Reason: protocol.ReasonBlocked},
		{Seq: 4, Op: protocol.OpNotBefore, User: "u2", At: 500, Exp: hour},
		{Seq: 5, Op: protocol.OpRevoke, Key: "sid:gone", Exp: now.Add(-2 * time.Hour).Unix()}, // expired: not stored, not kept
	}
	type want struct {
		sidA, fpB, u1, u2 bool
		kept              revocation.Kept
	}
	cases := []struct {
		name  string
		pages []protocol.SyncPage // applied after the state above (epoch e1, cursor 5)
		want  want
	}{
		{"new epoch, empty snapshot", []protocol.SyncPage{{Epoch: "e2", Reset: true}},
			want{true, true, true, true, revocation.Kept{Revoked: 2, Blocked: 1, NotBefore: 1}}},
		{"restore: same epoch, the log went back", []protocol.SyncPage{{Epoch: "e1", Cursor: 1, Reset: true, Changes: before[:1]}},
			want{true, true, true, true, revocation.Kept{Revoked: 1, Blocked: 1, NotBefore: 1}}},
		{"new epoch lifts a key and a user in its snapshot", []protocol.SyncPage{{Epoch: "e2", Cursor: 2, Reset: true, Changes: []protocol.Change{
			{Seq: 1, Op: protocol.OpUnrevoke, Key: "sid:a"},
			{Seq: 2, Op: protocol.OpUnblock, User: "u1"},
		}}}, want{false, true, false, true, revocation.Kept{Revoked: 1, NotBefore: 1}}},
		{"a lift on a later page of the snapshot", []protocol.SyncPage{
			{Epoch: "e2", Cursor: 1, Reset: true, More: true, Changes: []protocol.Change{{Seq: 1, Op: protocol.OpRevoke, Key: "sid:new", Exp: hour}}},
			{Epoch: "e2", Cursor: 2, Changes: []protocol.Change{{Seq: 2, Op: protocol.OpUnrevoke, Key: "fp:b"}}},
		}, want{true, false, true, true, revocation.Kept{Revoked: 1, Blocked: 1, NotBefore: 1}}},
		{"a lift after the snapshot, in a delta", []protocol.SyncPage{
			{Epoch: "e2", Cursor: 0, Reset: true},
			{Epoch: "e2", Cursor: 2, Changes: []protocol.Change{{Seq: 1, Op: protocol.OpUnrevoke, Key: "sid:a"}, {Seq: 2, Op: protocol.OpUnblock, User: "u1"}}},
		}, want{false, true, false, true, revocation.Kept{Revoked: 2, Blocked: 1, NotBefore: 1}}},
		{"the new snapshot has the key too: the later expiry wins", []protocol.SyncPage{{Epoch: "e2", Cursor: 1, Reset: true, Changes: []protocol.Change{
			{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a", Exp: exp(time.Minute)},
		}}}, want{true, true, true, true, revocation.Kept{Revoked: 1, Blocked: 1, NotBefore: 1}}},
	}
	for _, binary := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if binary {
				name += " (binary)"
			}
			t.Run(name, func(t *testing.T) {
				s := revocation.New()
				_, err := s.ApplyPage(encode(t, protocol.SyncPage{Epoch: "e1", Cursor: 5, Reset: true, Changes: before}, binary), now)
				require.NoError(t, err)
				var last revocation.Applied
				for _, p := range tc.pages {
					a, err := s.ApplyPage(encode(t, p, binary), now)
					require.NoError(t, err)
					if a.Swapped {
						last = a
					}
				}
				require.True(t, last.Swapped)
				assert.Equal(t, "e1", last.PrevEpoch)
				assert.Equal(t, tc.want.kept, last.Kept)
				n := now.Unix()
				_, ok := s.Revoked("sid:a", n)
				assert.Equal(t, tc.want.sidA, ok, "sid:a")
				_, ok = s.Revoked("fp:b", n)
				assert.Equal(t, tc.want.fpB, ok, "fp:b")
				_, ok = s.Blocked("u1", n)
				assert.Equal(t, tc.want.u1, ok, "u1")
				at, ok := s.NotBefore("u2", n)
				assert.Equal(t, tc.want.u2, ok, "u2")
				if ok {
					assert.EqualValues(t, 500, at)
				}
				_, ok = s.Revoked("sid:gone", n)
				assert.False(t, ok, "an expired entry is not kept")
				if tc.want.sidA {
					// Kept until the token expires (plus the leeway), not forever.
					_, ok = s.Revoked("sid:a", hour+revocation.Leeway+1)
					assert.False(t, ok, "kept past its expiry")
					s.Prune(time.Unix(hour+revocation.Leeway+1, 0))
					assert.Zero(t, s.Len().Revoked)
				}
			})
		}
	}
}

// TestFirstSnapshotKeepsNothing: a state without an epoch has nothing to keep.
func TestFirstSnapshotKeepsNothing(t *testing.T) {
	s := revocation.New()
	a, err := s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 1, Reset: true,
		Changes: []protocol.Change{{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a", Exp: exp(time.Hour)}}}), now)
	require.NoError(t, err)
	assert.True(t, a.Swapped)
	assert.Equal(t, "", a.PrevEpoch)
	assert.Zero(t, a.Kept.Total())
}
