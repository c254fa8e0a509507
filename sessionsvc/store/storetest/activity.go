package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// mergeAll merges every pending activity mark.
func mergeAll(t *testing.T, st store.Store) {
	t.Helper()
	for {
		n, err := st.MergeActivity(ctx(), 1000)
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
}

// lastActive reads the session's lastActive by id and in its user's list,
// asserting they agree.
func lastActive(t *testing.T, st store.Store, s *store.Session) time.Time {
	t.Helper()
	byID, err := st.GetSession(ctx(), s.ID)
	require.NoError(t, err)
	page, err := st.ListSessions(ctx(), store.SessionQuery{UserID: s.UserID, Limit: 100})
	require.NoError(t, err)
	found := false
	for _, l := range page.Sessions {
		if l.ID == s.ID {
			found = true
			assert.Equal(t, byID.LastActive, l.LastActive, "listed")
		}
	}
	assert.True(t, found, "listed")
	return byID.LastActive
}

// An activity mark is read at once, before any merge, by the reads that
// show lastActive; merged, it moves the stored column that the active and
// idle filters and the lastActive sort read.
func testActivityReadThrough(t *testing.T, st store.Store) {
	s := newSession(t, st, "u", "s", t0)
	other := newSession(t, st, "u", "o", t0.Add(time.Minute))
	at := t0.Add(10 * time.Minute)
	_, err := st.RecordActivity(ctx(), []store.ActivityMark{{Key: "fp:a-s", At: at}})
	require.NoError(t, err)

	assert.Equal(t, at, lastActive(t, st, s), "before the merge")
	byKey, err := st.FindSessionByKeys(ctx(), []string{"sid:s"})
	require.NoError(t, err)
	assert.Equal(t, at, byKey.LastActive, "found by key, before the merge")
	assert.Equal(t, t0.Add(time.Minute), lastActive(t, st, other), "a session without a mark is unchanged")

	mergeAll(t, st)
	assert.Equal(t, at, lastActive(t, st, s), "after the merge")
	// The merged column is what the filters and the sort read.
	idle := t0.Add(5 * time.Minute)
	page, err := st.ListSessions(ctx(), store.SessionQuery{Status: store.StatusActive, IdleBefore: idle})
	require.NoError(t, err)
	require.Len(t, page.Sessions, 1)
	assert.Equal(t, s.ID, page.Sessions[0].ID)
	page, err = st.ListSessions(ctx(), store.SessionQuery{Sort: "lastActive", Desc: true})
	require.NoError(t, err)
	require.Len(t, page.Sessions, 2)
	assert.Equal(t, []string{s.ID, other.ID}, []string{page.Sessions[0].ID, page.Sessions[1].ID})
	n, err := st.MergeActivity(ctx(), 1000)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to merge")
}

// The merge keeps the newest mark: later marks of a pending session
// replace it, older ones never move lastActive back, before or after a
// merge, and a newer lastActive written meanwhile (a refresh) stays.
func testActivityMergeKeepsNewest(t *testing.T, st store.Store) {
	s := newSession(t, st, "u", "s", t0)
	mark := func(d time.Duration) {
		t.Helper()
		_, err := st.RecordActivity(ctx(), []store.ActivityMark{{Key: "sid:s", At: t0.Add(d)}})
		require.NoError(t, err)
	}
	mark(5 * time.Minute)
	mark(7 * time.Minute)
	mark(6 * time.Minute) // older than the pending mark
	assert.Equal(t, t0.Add(7*time.Minute), lastActive(t, st, s))
	mergeAll(t, st)
	assert.Equal(t, t0.Add(7*time.Minute), lastActive(t, st, s))
	mark(3 * time.Minute) // older than the merged column
	assert.Equal(t, t0.Add(7*time.Minute), lastActive(t, st, s), "pending, older than the merged value")
	mergeAll(t, st)
	assert.Equal(t, t0.Add(7*time.Minute), lastActive(t, st, s), "merged, never backwards")

	// A refresh at 20 min writes the session row itself; a pending mark
	// at 15 min merged afterwards does not move it back.
	mark(15 * time.Minute)
	out, err := st.Refresh(ctx(), []string{"fp:r-s"}, nil, t0.Add(20*time.Minute))
	require.NoError(t, err)
	require.True(t, out.Allowed)
	assert.Equal(t, t0.Add(20*time.Minute), lastActive(t, st, s))
	mergeAll(t, st)
	assert.Equal(t, t0.Add(20*time.Minute), lastActive(t, st, s))
}

// Idle reaping never ends a session marked since the idle bound, whether
// its mark is merged or still pending; an ended session keeps the mark it
// had when it ended and ignores later ones.
func testActivityIdleReaping(t *testing.T, st store.Store) {
	now := t0.Add(time.Hour)
	pending := newSession(t, st, "u", "pending", t0)
	merged := newSession(t, st, "u", "merged", t0)
	stale := newSession(t, st, "u", "stale", t0)
	old := newSession(t, st, "u", "old", t0) // marked, but before the bound
	_, err := st.RecordActivity(ctx(), []store.ActivityMark{
		{Key: "sid:merged", At: now.Add(-2 * time.Minute)},
		{Key: "sid:old", At: now.Add(-20 * time.Minute)},
	})
	require.NoError(t, err)
	mergeAll(t, st)
	_, err = st.RecordActivity(ctx(), []store.ActivityMark{{Key: "fp:a-pending", At: now.Add(-time.Minute)}})
	require.NoError(t, err)

	ended, err := st.EndIdle(ctx(), now.Add(-15*time.Minute), now)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{stale.ID, old.ID}, ended)
	for _, s := range []*store.Session{pending, merged} {
		g, err := st.GetSession(ctx(), s.ID)
		require.NoError(t, err)
		assert.True(t, g.Active, "%s was marked since the bound", s.ID)
	}

	// Ending a session merges its pending mark; marks after the end are
	// ignored, merged or not.
	_, err = st.RecordActivity(ctx(), []store.ActivityMark{{Key: "sid:pending", At: now}})
	require.NoError(t, err)
	_, err = st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{pending.ID}}, protocol.ReasonLogout, false, now)
	require.NoError(t, err)
	_, err = st.RecordActivity(ctx(), []store.ActivityMark{{Key: "sid:pending", At: now.Add(time.Minute)}})
	require.NoError(t, err)
	assert.Equal(t, now, lastActive(t, st, pending), "the mark it had when it ended")
	mergeAll(t, st)
	assert.Equal(t, now, lastActive(t, st, pending), "a mark after the end is not merged")
}
