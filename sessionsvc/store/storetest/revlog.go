package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testChanges(t *testing.T, st store.Store) {
	now := t0
	epoch, err := st.Epoch(ctx())
	require.NoError(t, err)

	empty, err := st.Changes(ctx(), epoch, 0, 10, now)
	require.NoError(t, err)
	assert.True(t, empty.Reset)
	assert.False(t, empty.More)
	assert.Empty(t, empty.Changes)
	assert.Equal(t, int64(0), empty.Cursor)
	assert.Equal(t, epoch, empty.Epoch)
	assert.Equal(t, now.Unix(), empty.Now)

	var keys []string
	for i := 0; i < 25; i++ {
		keys = append(keys, fmt.Sprintf("fp:k%02d", i))
	}
	require.NoError(t, st.RevokeKeys(ctx(), keys[:20], protocol.ReasonLogout, now.Add(time.Hour), now))
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:short"}, protocol.ReasonLogout, now.Add(time.Second), now))

	// Snapshot pages.
	p1, err := st.Changes(ctx(), epoch, 0, 8, now)
	require.NoError(t, err)
	assert.True(t, p1.Reset)
	assert.True(t, p1.More)
	require.Len(t, p1.Changes, 8)
	assert.Equal(t, p1.Changes[7].Seq, p1.Cursor)
	for i := 1; i < len(p1.Changes); i++ {
		assert.Less(t, p1.Changes[i-1].Seq, p1.Changes[i].Seq)
	}
	assert.Equal(t, protocol.OpRevoke, p1.Changes[0].Op)
	assert.Equal(t, "fp:k00", p1.Changes[0].Key)
	assert.Equal(t, now.Add(time.Hour).Unix(), p1.Changes[0].Exp)

	// Delta from the end of the log.
	head := allChanges(t, st, 0, now)
	require.Len(t, head, 21)
	cursor := head[len(head)-1].Seq

	require.NoError(t, st.RevokeKeys(ctx(), keys[20:], protocol.ReasonManual, now.Add(time.Hour), now))
	d, err := st.Changes(ctx(), epoch, cursor, 3, now)
	require.NoError(t, err)
	assert.False(t, d.Reset)
	assert.True(t, d.More)
	require.Len(t, d.Changes, 3)
	assert.Equal(t, "fp:k20", d.Changes[0].Key)
	assert.Equal(t, protocol.ReasonManual, d.Changes[0].Reason)
	d2, err := st.Changes(ctx(), epoch, d.Cursor, 3, now)
	require.NoError(t, err)
	assert.False(t, d2.More)
	require.Len(t, d2.Changes, 2)
	assert.Equal(t, "fp:k24", d2.Changes[1].Key)

	// Nothing new: same cursor back.
	d3, err := st.Changes(ctx(), epoch, d2.Cursor, 3, now)
	require.NoError(t, err)
	assert.Empty(t, d3.Changes)
	assert.Equal(t, d2.Cursor, d3.Cursor)
	assert.False(t, d3.More)

	// Foreign epoch: a snapshot of live entries only; the expired one is
	// left out and the cursor is the log head.
	later := now.Add(time.Minute)
	f, err := st.Changes(ctx(), "another-epoch", d2.Cursor, 1000, later)
	require.NoError(t, err)
	assert.True(t, f.Reset)
	assert.False(t, f.More)
	assert.Equal(t, epoch, f.Epoch)
	assert.Len(t, f.Changes, 25)
	for _, c := range f.Changes {
		assert.NotEqual(t, "fp:short", c.Key)
	}
	assert.Equal(t, d2.Cursor, f.Cursor)

	// A superseded entry is not in the snapshot, a re-revoked key appears once.
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:k00"}, protocol.ReasonReuse, now.Add(2*time.Hour), now))
	f, err = st.Changes(ctx(), epoch, 0, 1000, later)
	require.NoError(t, err)
	count := 0
	for _, c := range f.Changes {
		if c.Key == "fp:k00" {
			count++
			assert.Equal(t, protocol.ReasonReuse, c.Reason)
		}
	}
	assert.Equal(t, 1, count)
}

func testBlock(t *testing.T, st store.Store) {
	a := newSession(t, st, "bad", "a", t0)
	now := t0.Add(time.Minute)
	blocked, err := st.IsBlocked(ctx(), "bad")
	require.NoError(t, err)
	assert.False(t, blocked)

	require.NoError(t, st.SetBlocked(ctx(), "bad", true, now))
	blocked, err = st.IsBlocked(ctx(), "bad")
	require.NoError(t, err)
	assert.True(t, blocked)
	got, err := st.GetSession(ctx(), a.ID)
	require.NoError(t, err)
	assert.False(t, got.Active)
	assert.Equal(t, protocol.ReasonBlocked, got.TerminationReason)

	snap := allChanges(t, st, 0, now)
	var sawBlock bool
	for _, c := range snap {
		if c.Op == protocol.OpBlock {
			sawBlock = true
			assert.Equal(t, "bad", c.User)
		}
	}
	assert.True(t, sawBlock)
	cursor := snap[len(snap)-1].Seq

	require.NoError(t, st.SetBlocked(ctx(), "bad", false, now))
	blocked, err = st.IsBlocked(ctx(), "bad")
	require.NoError(t, err)
	assert.False(t, blocked)
	delta := allChanges(t, st, cursor, now)
	require.Len(t, delta, 1)
	assert.Equal(t, protocol.OpUnblock, delta[0].Op)
	assert.Equal(t, "bad", delta[0].User)
	var lifted bool
	for _, c := range allChanges(t, st, 0, now) {
		assert.NotEqual(t, protocol.OpBlock, c.Op, "unblocked user is not in a snapshot")
		if c.Op == protocol.OpUnblock && c.User == "bad" {
			lifted = true
		}
	}
	assert.True(t, lifted, "a snapshot lists the unblock: a lift is not the same as absent")

	require.NoError(t, st.SetNotBefore(ctx(), "bad", now, now.Add(time.Hour), now))
	require.NoError(t, st.SetNotBefore(ctx(), "bad", now.Add(time.Second), now.Add(time.Hour), now))
	var nbs []protocol.Change
	for _, c := range allChanges(t, st, 0, now) {
		if c.Op == protocol.OpNotBefore {
			nbs = append(nbs, c)
		}
	}
	require.Len(t, nbs, 1, "only the latest not-before is live")
	assert.Equal(t, now.Add(time.Second).Unix(), nbs[0].At)
	assert.Equal(t, "bad", nbs[0].User)
	assert.Equal(t, now.Add(time.Hour).Unix(), nbs[0].Exp)
}

func testCompact(t *testing.T, st store.Store) {
	now := t0
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:a", "fp:b"}, protocol.ReasonLogout, now.Add(time.Minute), now))
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:c"}, protocol.ReasonLogout, now.Add(time.Hour), now))
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:c"}, protocol.ReasonManual, now.Add(2*time.Hour), now)) // supersedes
	require.NoError(t, st.SetBlocked(ctx(), "x", true, now))

	n, err := st.Compact(ctx(), now)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the superseded entry goes while tokens are valid")
	n, err = st.Compact(ctx(), now.Add(30*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "expired entries go")
	n, err = st.Compact(ctx(), now.Add(30*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 0, n, "compaction is idempotent")

	left := allChanges(t, st, 0, now.Add(30*time.Minute))
	require.Len(t, left, 2)
	assert.Equal(t, "fp:c", left[0].Key)
	assert.Equal(t, protocol.OpBlock, left[1].Op, "blocks never expire")
}

// testConcurrentFeed appends from several goroutines while a reader follows
// the feed by cursor: the reader must end up with every entry exactly once
// (a lower seq committing after a higher one would be skipped).
func testConcurrentFeed(t *testing.T, st store.Store) {
	const writers, perWriter = 4, 25
	now := t0
	epoch, err := st.Epoch(ctx())
	require.NoError(t, err)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if err := st.RevokeKeys(ctx(), []string{fmt.Sprintf("fp:w%d-%d", w, i)}, protocol.ReasonLogout, now.Add(time.Hour), now); err != nil {
					t.Errorf("revoke: %v", err)
					return
				}
			}
		}(w)
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var cursor int64 = -1
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true
		default:
		}
		c := cursor
		if c < 0 {
			c = 0
		}
		p, err := st.Changes(ctx(), epoch, c, 7, now)
		require.NoError(t, err)
		for _, ch := range p.Changes {
			seen[ch.Key]++
		}
		cursor = p.Cursor
		if p.Reset && !p.More {
			cursor = p.Cursor
		}
		for p.More {
			p, err = st.Changes(ctx(), epoch, cursor, 7, now)
			require.NoError(t, err)
			for _, ch := range p.Changes {
				seen[ch.Key]++
			}
			cursor = p.Cursor
		}
		if cursor == 0 {
			cursor = -1
		}
	}
	assert.Len(t, seen, writers*perWriter, "every entry reached the reader")
	for k, n := range seen {
		assert.Equal(t, 1, n, "entry %s seen once", k)
	}
}

// A revocation of many keys is written in a few statements (chunks on
// SQLite): every key is logged once, in order, and a key revoked again
// later has one live entry, its last.
func testRevokeKeysBatch(t *testing.T, st store.Store) {
	now := t0
	head := func() int64 {
		cs := allChanges(t, st, 0, now)
		if len(cs) == 0 {
			return 0
		}
		return cs[len(cs)-1].Seq
	}
	// A cursor past 0 reads a delta (0 reads a snapshot).
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:batch-before"}, protocol.ReasonLogout, now.Add(time.Hour), now))
	before := head()
	require.Positive(t, before)
	const n = 1203 // more than one SQLite chunk of each statement
	keys := make([]string, 0, n)
	for i := 0; i < n; i++ {
		keys = append(keys, fmt.Sprintf("fp:batch-%04d", i))
	}
	require.NoError(t, st.RevokeKeys(ctx(), keys, protocol.ReasonLogout, now.Add(time.Hour), now))
	// Again for some, with another reason: they supersede.
	require.NoError(t, st.RevokeKeys(ctx(), []string{"fp:batch-0001", "fp:batch-1202"}, protocol.ReasonManual, now.Add(2*time.Hour), now))

	delta := allChanges(t, st, before, now)
	require.Equal(t, n+2, len(delta), "every entry, the later ones included, in the delta")
	for i, c := range delta[:n] {
		assert.Equal(t, keys[i], c.Key, "entry %d in call order", i)
	}
	for i := 1; i < len(delta); i++ {
		require.Greater(t, delta[i].Seq, delta[i-1].Seq)
	}

	epoch, err := st.Epoch(ctx())
	require.NoError(t, err)
	snap, err := st.Changes(ctx(), epoch, 0, store.MaxChangesLimit, now) // one page: a snapshot
	require.NoError(t, err)
	require.False(t, snap.More)
	live := map[string]protocol.Change{}
	for _, c := range snap.Changes {
		_, dup := live[c.Key]
		assert.False(t, dup, "one live entry for %s", c.Key)
		live[c.Key] = c
	}
	for _, k := range keys {
		_, ok := live[k]
		assert.True(t, ok, "%s is live", k)
	}
	assert.Equal(t, protocol.ReasonManual, live["fp:batch-0001"].Reason)
	assert.Equal(t, now.Add(2*time.Hour).Unix(), live["fp:batch-1202"].Exp)
	assert.Equal(t, delta[n].Seq, live["fp:batch-0001"].Seq)
	assert.Equal(t, protocol.ReasonLogout, live["fp:batch-0007"].Reason)
}

// testBlockedUserGetsNoSession: CreateSession refuses a blocked user
// (ErrBlocked), and a block racing a login never leaves the blocked user
// an active session: either the block ends the new session, or the login
// sees the block.
func testBlockedUserGetsNoSession(t *testing.T, st store.Store) {
	require.NoError(t, st.SetBlocked(ctx(), "blk", true, t0))
	s := &store.Session{UserID: "blk", LoginTime: t0, LastActive: t0}
	err := st.CreateSession(ctx(), s, []store.SessionKey{{Key: "sid:blk0", Kind: store.KeySession, ExpiresAt: t0.Add(time.Hour)}}, nil)
	require.ErrorIs(t, err, store.ErrBlocked)
	_, err = st.FindSessionByKeys(ctx(), []string{"sid:blk0"})
	require.ErrorIs(t, err, store.ErrNotFound, "nothing stored")

	for i := range 30 {
		user := fmt.Sprintf("race%d", i)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			assert.NoError(t, st.SetBlocked(ctx(), user, true, t0))
		}()
		go func() {
			defer wg.Done()
			s := &store.Session{UserID: user, LoginTime: t0, LastActive: t0}
			err := st.CreateSession(ctx(), s, []store.SessionKey{{Key: "sid:" + user, Kind: store.KeySession, ExpiresAt: t0.Add(time.Hour)}}, nil)
			if err != nil {
				assert.ErrorIs(t, err, store.ErrBlocked)
			}
		}()
		wg.Wait()
		got, err := st.FindSessionByKeys(ctx(), []string{"sid:" + user})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		require.NoError(t, err)
		assert.False(t, got.Active, "%s: a blocked user's session stayed active", user)
		assert.Equal(t, protocol.ReasonBlocked, got.TerminationReason, user)
		assert.False(t, got.TerminatedManually, "ended by a block, not by an admin's terminate")
	}
}
