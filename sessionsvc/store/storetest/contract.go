package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Run runs the contract suite; open returns a fresh, empty store.
func Run(t *testing.T, open func(testing.TB) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Epoch", testEpoch},
		{"CreateGetFind", testCreateGetFind},
		{"ListSessions", testListSessions},
		{"EndSessions", testEndSessions},
		{"Refresh", testRefresh},
		{"CheckRefresh", testCheckRefresh},
		{"RecordActivity", testRecordActivity},
		{"ChangesDeltaAndSnapshot", testChanges},
		{"BlockAndNotBefore", testBlock},
		{"Compact", testCompact},
		{"Lifecycle", testLifecycle},
		{"DeleteSession", testDelete},
		{"AdminTokens", testAdminTokens},
		{"Settings", testSettings},
		{"Alerts", testAlerts},
		{"FailedLogins", testFailedLogins},
		{"LoginCounters", testLoginCounters},
		{"LoginCountersConcurrent", testLoginCountersConcurrent},
		{"LoginCountersProgressive", testLoginCountersProgressive},
		{"LoginFailuresBatch", testLoginFailuresBatch},
		{"LoginAttempts", testLoginAttempts},
		{"ConcurrentAppendsKeepFeedOrder", testConcurrentFeed},
		{"DiscoverSessions", testDiscoverSessions},
		{"DiscoverConcurrently", testDiscoverConcurrently},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ctx() context.Context { return context.Background() }

// newSession stores a session for user with keys sid:<id>, fp:a-<id>, fp:r-<id>.
func newSession(t *testing.T, st store.Store, user, name string, login time.Time) *store.Session {
	t.Helper()
	s := &store.Session{
		UserID: user, IP: "10.0.0." + fmt.Sprint(len(name)), UserAgent: "Mozilla/5.0 " + name,
		LoginTime: login, LastActive: login, DeviceType: "desktop", BrowserName: "Firefox 130", OSName: "Linux",
		Geo: &store.GeoLocation{Country: "Germany", CountryCode: "DE", City: "Berlin"}, SecurityScore: 90,
		ScoreReasons: []string{"new device"}, Route: "/api/auth/local",
	}
	keys := []store.SessionKey{
		{Key: "sid:" + name, Kind: store.KeySession, ExpiresAt: login.Add(time.Hour)},
		{Key: "fp:a-" + name, Kind: store.KeyAccess, ExpiresAt: login.Add(time.Hour)},
		{Key: "fp:r-" + name, Kind: store.KeyRefresh, ExpiresAt: login.Add(24 * time.Hour)},
	}
	require.NoError(t, st.CreateSession(ctx(), s, keys, nil))
	require.NotEmpty(t, s.ID)
	return s
}

func allChanges(t *testing.T, st store.Store, cursor int64, now time.Time) []protocol.Change {
	t.Helper()
	epoch, err := st.Epoch(ctx())
	require.NoError(t, err)
	var out []protocol.Change
	for {
		p, err := st.Changes(ctx(), epoch, cursor, 1000, now)
		require.NoError(t, err)
		out = append(out, p.Changes...)
		cursor = p.Cursor
		if !p.More {
			return out
		}
	}
}

func testEpoch(t *testing.T, st store.Store) {
	e1, err := st.Epoch(ctx())
	require.NoError(t, err)
	assert.Len(t, e1, 24)
	e2, err := st.Epoch(ctx())
	require.NoError(t, err)
	assert.Equal(t, e1, e2)
	require.NoError(t, st.Ping(ctx()))
}

func testCreateGetFind(t *testing.T, st store.Store) {
	s := newSession(t, st, "42", "one", t0)
	assert.Regexp(t, `^sess_[A-Za-z0-9_-]{22}$`, s.ID)

	got, err := st.GetSession(ctx(), s.ID)
	require.NoError(t, err)
	assert.Equal(t, "42", got.UserID)
	assert.True(t, got.Active)
	assert.Nil(t, got.LogoutTime)
	assert.True(t, got.LoginTime.Equal(t0))
	assert.True(t, got.LastActive.Equal(t0))
	assert.Equal(t, "Berlin", got.Geo.City)
	assert.Equal(t, []string{"new device"}, got.ScoreReasons)
	assert.Equal(t, 90, got.SecurityScore)
	assert.True(t, got.ExpiresAt.Equal(t0.Add(24*time.Hour)), "expiry is the latest key expiry")

	_, err = st.GetSession(ctx(), "sess_missing")
	assert.ErrorIs(t, err, store.ErrNotFound)

	for _, k := range []string{"sid:one", "fp:a-one", "fp:r-one"} {
		f, err := st.FindSessionByKeys(ctx(), []string{"fp:unknown", k})
		require.NoError(t, err, k)
		assert.Equal(t, s.ID, f.ID)
	}
	_, err = st.FindSessionByKeys(ctx(), []string{"fp:unknown"})
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.FindSessionByKeys(ctx(), nil)
	assert.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, st.AddKeys(ctx(), s.ID, []store.SessionKey{{Key: "fp:a2-one", Kind: store.KeyAccess, ExpiresAt: t0.Add(48 * time.Hour)}}))
	f, err := st.FindSessionByKeys(ctx(), []string{"fp:a2-one"})
	require.NoError(t, err)
	assert.Equal(t, s.ID, f.ID)
	assert.True(t, f.ExpiresAt.Equal(t0.Add(48*time.Hour)))
	assert.ErrorIs(t, st.AddKeys(ctx(), "sess_missing", []store.SessionKey{{Key: "fp:x"}}), store.ErrNotFound)

	// Alerts are written with the session.
	a := []store.Alert{{Event: "login.success", Channel: "email", Payload: json.RawMessage(`{"u":"42"}`)}}
	s2 := &store.Session{UserID: "42", LoginTime: t0}
	require.NoError(t, st.CreateSession(ctx(), s2, []store.SessionKey{{Key: "fp:s2"}}, a))
	list, err := st.ListAlerts(ctx(), false, 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "login.success", list[0].Event)
	assert.JSONEq(t, `{"u":"42"}`, string(list[0].Payload))
}

func testListSessions(t *testing.T, st store.Store) {
	a := newSession(t, st, "1", "a", t0)
	b := newSession(t, st, "1", "b", t0.Add(time.Minute))
	c := newSession(t, st, "2", "c", t0.Add(2*time.Minute))
	d := newSession(t, st, "2", "dd", t0.Add(3*time.Minute))
	_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{c.ID}}, protocol.ReasonLogout, false, t0.Add(time.Hour))
	require.NoError(t, err)
	_, err = st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{d.ID}}, protocol.ReasonManual, true, t0.Add(time.Hour))
	require.NoError(t, err)
	ids := func(p store.SessionPage) []string {
		var out []string
		for _, s := range p.Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	idle := t0.Add(30 * time.Second) // a is idle, b is active
	cases := []struct {
		name  string
		q     store.SessionQuery
		want  []string
		total int
	}{
		{"user", store.SessionQuery{UserID: "1", Sort: "loginTime"}, []string{a.ID, b.ID}, 2},
		{"user desc", store.SessionQuery{UserID: "1", Sort: "loginTime", Desc: true}, []string{b.ID, a.ID}, 2},
		{"all by login", store.SessionQuery{Sort: "loginTime"}, []string{a.ID, b.ID, c.ID, d.ID}, 4},
		{"page", store.SessionQuery{Sort: "loginTime", Offset: 1, Limit: 2}, []string{b.ID, c.ID}, 4},
		{"beyond", store.SessionQuery{Sort: "loginTime", Offset: 10}, nil, 4},
		{"active only", store.SessionQuery{ActiveOnly: true, Sort: "loginTime"}, []string{a.ID, b.ID}, 2},
		{"status active", store.SessionQuery{Status: store.StatusActive, IdleBefore: idle}, []string{b.ID}, 1},
		{"status idle", store.SessionQuery{Status: store.StatusIdle, IdleBefore: idle}, []string{a.ID}, 1},
		{"logged out", store.SessionQuery{Status: store.StatusLoggedOut}, []string{c.ID}, 1},
		{"terminated", store.SessionQuery{Status: store.StatusTerminated}, []string{d.ID}, 1},
		{"search user agent-free ip", store.SessionQuery{Search: "10.0.0.2", Sort: "loginTime"}, []string{d.ID}, 1},
		{"search country case-insensitive", store.SessionQuery{Search: "germ", Sort: "loginTime"}, []string{a.ID, b.ID, c.ID, d.ID}, 4},
		{"search like chars are literal", store.SessionQuery{Search: "%"}, nil, 0},
		{"search session id", store.SessionQuery{Search: c.ID}, []string{c.ID}, 1},
		{"search upper case", store.SessionQuery{Search: "GERMANY", Sort: "loginTime"}, []string{a.ID, b.ID, c.ID, d.ID}, 4},
		{"search short term", store.SessionQuery{Search: ".2", Sort: "loginTime"}, []string{d.ID}, 1},
		{"search quote is literal", store.SessionQuery{Search: `ger"m`}, nil, 0},
		{"search does not span columns", store.SessionQuery{Search: "Germany10.0"}, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := st.ListSessions(ctx(), tc.q)
			require.NoError(t, err)
			assert.Equal(t, tc.total, p.Total)
			assert.Equal(t, tc.want, ids(p))
		})
	}
	// A deleted session leaves the search index too.
	require.NoError(t, st.DeleteSession(ctx(), d.ID, t0.Add(2*time.Hour)))
	p, err := st.ListSessions(ctx(), store.SessionQuery{Search: "10.0.0.2"})
	require.NoError(t, err)
	assert.Zero(t, p.Total)
	_, err = st.ListSessions(ctx(), store.SessionQuery{Sort: "password; DROP TABLE sessions"})
	assert.Error(t, err)
	_, err = st.ListSessions(ctx(), store.SessionQuery{Status: "weird"})
	assert.Error(t, err)
}

func testEndSessions(t *testing.T, st store.Store) {
	a := newSession(t, st, "u", "a", t0)
	b := newSession(t, st, "u", "b", t0)
	c := newSession(t, st, "u", "c", t0)
	other := newSession(t, st, "v", "o", t0)
	now := t0.Add(time.Minute)

	ended, err := st.EndSessions(ctx(), store.EndFilter{UserID: "u", ExceptSessionID: b.ID}, protocol.ReasonLogout, false, now)
	require.NoError(t, err)
	sort.Strings(ended)
	want := []string{a.ID, c.ID}
	sort.Strings(want)
	assert.Equal(t, want, ended)

	got, err := st.GetSession(ctx(), a.ID)
	require.NoError(t, err)
	assert.False(t, got.Active)
	assert.Equal(t, protocol.ReasonLogout, got.TerminationReason)
	assert.False(t, got.TerminatedManually)
	require.NotNil(t, got.LogoutTime)
	assert.True(t, got.LogoutTime.Equal(now))

	still, err := st.GetSession(ctx(), b.ID)
	require.NoError(t, err)
	assert.True(t, still.Active)
	o, err := st.GetSession(ctx(), other.ID)
	require.NoError(t, err)
	assert.True(t, o.Active, "another user's session is untouched")

	// Ending again is a no-op.
	again, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{a.ID}}, protocol.ReasonManual, true, now)
	require.NoError(t, err)
	assert.Empty(t, again)

	ch := allChanges(t, st, 0, now)
	revoked := map[string]protocol.Change{}
	for _, c := range ch {
		revoked[c.Key] = c
	}
	for _, k := range []string{"sid:a", "fp:a-a", "fp:r-a", "sid:c", "fp:a-c", "fp:r-c"} {
		require.Contains(t, revoked, k)
		assert.Equal(t, protocol.OpRevoke, revoked[k].Op)
		assert.Equal(t, protocol.ReasonLogout, revoked[k].Reason)
	}
	assert.Equal(t, t0.Add(time.Hour).Unix(), revoked["fp:a-a"].Exp, "entry lives until the token expires")
	assert.Equal(t, t0.Add(24*time.Hour).Unix(), revoked["fp:r-a"].Exp)
	assert.NotContains(t, revoked, "sid:b")
	assert.Len(t, ch, 6)

	_, err = st.EndSessions(ctx(), store.EndFilter{}, protocol.ReasonManual, true, now)
	assert.Error(t, err, "an empty filter must not end everything")
}

func testRefresh(t *testing.T, st store.Store) {
	s := newSession(t, st, "u", "s", t0)
	now := t0.Add(time.Minute)
	out, err := st.Refresh(ctx(), []string{"fp:r-s"}, []store.SessionKey{
		{Key: "fp:a2", Kind: store.KeyAccess, ExpiresAt: now.Add(time.Hour)},
		{Key: "fp:r2", Kind: store.KeyRefresh, ExpiresAt: now.Add(48 * time.Hour)},
	}, now)
	require.NoError(t, err)
	assert.True(t, out.Allowed)
	assert.Equal(t, s.ID, out.SessionID)
	f, err := st.FindSessionByKeys(ctx(), []string{"fp:a2"})
	require.NoError(t, err)
	assert.Equal(t, s.ID, f.ID)

	// The new refresh token works once.
	out, err = st.Refresh(ctx(), []string{"fp:r2"}, []store.SessionKey{{Key: "fp:r3", Kind: store.KeyRefresh}}, now)
	require.NoError(t, err)
	assert.True(t, out.Allowed)

	// Presenting the rotated token again is reuse: the whole session ends.
	out, err = st.Refresh(ctx(), []string{"fp:r-s"}, []store.SessionKey{{Key: "fp:evil", Kind: store.KeyRefresh}}, now)
	require.NoError(t, err)
	assert.False(t, out.Allowed)
	assert.Equal(t, protocol.ReasonReuse, out.Reason)
	got, err := st.GetSession(ctx(), s.ID)
	require.NoError(t, err)
	assert.False(t, got.Active)
	assert.Equal(t, protocol.ReasonReuse, got.TerminationReason)
	_, err = st.FindSessionByKeys(ctx(), []string{"fp:evil"})
	assert.ErrorIs(t, err, store.ErrNotFound, "no keys attached on reuse")
	ch := allChanges(t, st, 0, now)
	keys := map[string]bool{}
	for _, c := range ch {
		keys[c.Key] = true
		assert.Equal(t, protocol.ReasonReuse, c.Reason)
	}
	for _, k := range []string{"sid:s", "fp:a-s", "fp:r-s", "fp:a2", "fp:r2", "fp:r3"} {
		assert.True(t, keys[k], "revoked %s", k)
	}

	// A refresh of an ended session is refused with its reason.
	out, err = st.Refresh(ctx(), []string{"fp:r3"}, nil, now)
	require.NoError(t, err)
	assert.False(t, out.Allowed)
	assert.Equal(t, protocol.ReasonReuse, out.Reason)

	l := newSession(t, st, "u", "l", t0)
	_, err = st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{l.ID}}, protocol.ReasonLogout, false, now)
	require.NoError(t, err)
	out, err = st.Refresh(ctx(), []string{"fp:r-l"}, nil, now)
	require.NoError(t, err)
	assert.False(t, out.Allowed)
	assert.Equal(t, protocol.ReasonLogout, out.Reason)

	_, err = st.Refresh(ctx(), []string{"fp:nobody"}, nil, now)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testRecordActivity(t *testing.T, st store.Store) {
	s := newSession(t, st, "u", "s", t0)
	ended := newSession(t, st, "u", "e", t0)
	_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{ended.ID}}, protocol.ReasonLogout, false, t0)
	require.NoError(t, err)

	n, err := st.RecordActivity(ctx(), []store.ActivityMark{
		{Key: "sid:s", At: t0.Add(2 * time.Minute)},
		{Key: "fp:a-s", At: t0.Add(5 * time.Minute)}, // same session, later: wins
		{Key: "fp:a-s", At: t0.Add(1 * time.Minute)}, // earlier mark for the same key: ignored
		{Key: "fp:unknown", At: t0.Add(time.Hour)},
		{Key: "sid:e", At: t0.Add(time.Hour)}, // ended sessions do not move
	})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := st.GetSession(ctx(), s.ID)
	require.NoError(t, err)
	assert.True(t, got.LastActive.Equal(t0.Add(5*time.Minute)), "got %v", got.LastActive)

	// Never backwards.
	n, err = st.RecordActivity(ctx(), []store.ActivityMark{{Key: "sid:s", At: t0.Add(3 * time.Minute)}})
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	got, err = st.GetSession(ctx(), s.ID)
	require.NoError(t, err)
	assert.True(t, got.LastActive.Equal(t0.Add(5*time.Minute)))
	e, err := st.GetSession(ctx(), ended.ID)
	require.NoError(t, err)
	assert.True(t, e.LastActive.Equal(t0))
}

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

func testLifecycle(t *testing.T, st store.Store) {
	old := newSession(t, st, "u", "old", t0.Add(-40*24*time.Hour))
	idle := newSession(t, st, "u", "idle", t0.Add(-time.Hour))
	fresh := newSession(t, st, "u", "fresh", t0.Add(-time.Minute))
	now := t0

	ended, err := st.EndOld(ctx(), now.Add(-30*24*time.Hour), now)
	require.NoError(t, err)
	assert.Equal(t, []string{old.ID}, ended)
	ended, err = st.EndIdle(ctx(), now.Add(-15*time.Minute), now)
	require.NoError(t, err)
	assert.Equal(t, []string{idle.ID}, ended)
	ended, err = st.EndIdle(ctx(), now.Add(-15*time.Minute), now)
	require.NoError(t, err)
	assert.Empty(t, ended)

	g, err := st.GetSession(ctx(), old.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.ReasonExpired, g.TerminationReason)
	g, err = st.GetSession(ctx(), idle.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.ReasonIdle, g.TerminationReason)
	g, err = st.GetSession(ctx(), fresh.ID)
	require.NoError(t, err)
	assert.True(t, g.Active)

	n, err := st.Purge(ctx(), now)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "ended exactly now: not before now")
	n, err = st.Purge(ctx(), now.Add(time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, err = st.GetSession(ctx(), idle.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.FindSessionByKeys(ctx(), []string{"sid:idle"})
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.GetSession(ctx(), fresh.ID)
	assert.NoError(t, err)
}

func testDelete(t *testing.T, st store.Store) {
	s := newSession(t, st, "u", "d", t0)
	require.NoError(t, st.DeleteSession(ctx(), s.ID, t0))
	_, err := st.GetSession(ctx(), s.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	keys := map[string]bool{}
	for _, c := range allChanges(t, st, 0, t0) {
		keys[c.Key] = true
	}
	assert.True(t, keys["sid:d"], "an active session's keys are revoked before it is deleted")
	assert.ErrorIs(t, st.DeleteSession(ctx(), s.ID, t0), store.ErrNotFound)
}

func testAdminTokens(t *testing.T, st store.Store) {
	tok, err := st.CreateAdminToken(ctx(), "ci", "abc123", t0)
	require.NoError(t, err)
	assert.NotZero(t, tok.ID)
	assert.Equal(t, "ci", tok.Name)
	_, err = st.CreateAdminToken(ctx(), "dup", "abc123", t0)
	assert.ErrorIs(t, err, store.ErrConflict)

	f, err := st.FindAdminToken(ctx(), "abc123", t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, tok.ID, f.ID)
	require.NotNil(t, f.LastUsed)
	list, err := st.ListAdminTokens(ctx())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NotNil(t, list[0].LastUsed)
	assert.True(t, list[0].LastUsed.Equal(t0.Add(time.Hour)))

	require.NoError(t, st.RevokeAdminToken(ctx(), tok.ID))
	_, err = st.FindAdminToken(ctx(), "abc123", t0)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, st.RevokeAdminToken(ctx(), 9999), store.ErrNotFound)
	list, err = st.ListAdminTokens(ctx())
	require.NoError(t, err)
	assert.True(t, list[0].Revoked)
}

func testSettings(t *testing.T, st store.Store) {
	doc, err := st.GetSettings(ctx())
	require.NoError(t, err)
	assert.Nil(t, doc)
	require.NoError(t, st.PutSettings(ctx(), json.RawMessage(`{"a":1}`)))
	require.NoError(t, st.PutSettings(ctx(), json.RawMessage(`{"a":2}`)))
	doc, err = st.GetSettings(ctx())
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":2}`, string(doc))
	assert.Error(t, st.PutSettings(ctx(), json.RawMessage(`{`)))
}

func testAlerts(t *testing.T, st store.Store) {
	now := t0
	require.NoError(t, st.EnqueueAlerts(ctx(), []store.Alert{
		{Event: "e1", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "e2", Channel: "webhook:x", Payload: json.RawMessage(`{}`), NextAttempt: now},
		{Event: "later", Channel: "email", NextAttempt: now.Add(time.Hour)},
	}))
	a, err := st.ClaimAlerts(ctx(), "r1", 10, now, time.Minute)
	require.NoError(t, err)
	require.Len(t, a, 2)
	assert.Equal(t, "e1", a[0].Event)
	b, err := st.ClaimAlerts(ctx(), "r2", 10, now, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, b, "leased alerts are not handed out twice")

	require.NoError(t, st.MarkAlertSent(ctx(), a[0].ID, now))
	require.NoError(t, st.MarkAlertFailed(ctx(), a[1].ID, "boom", now.Add(time.Minute), true))
	dead, err := st.ListAlerts(ctx(), true, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, "boom", dead[0].LastError)
	assert.Equal(t, 1, dead[0].Attempts)

	// Lease expired and due: "later" comes back after an hour; the dead one only after a retry.
	c, err := st.ClaimAlerts(ctx(), "r2", 10, now.Add(2*time.Hour), time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	assert.Equal(t, "later", c[0].Event)
	require.NoError(t, st.RetryAlert(ctx(), a[1].ID, now.Add(2*time.Hour)))
	c, err = st.ClaimAlerts(ctx(), "r3", 10, now.Add(2*time.Hour), time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	assert.Equal(t, "e2", c[0].Event)
	assert.ErrorIs(t, st.MarkAlertSent(ctx(), 424242, now), store.ErrNotFound)
}

func testFailedLogins(t *testing.T, st store.Store) {
	now := t0
	for i := 0; i < 3; i++ {
		n, err := st.RecordFailedLogin(ctx(), "ip:1.2.3.4", now.Add(time.Duration(i)*time.Minute), 10*time.Minute)
		require.NoError(t, err)
		assert.Equal(t, i+1, n)
	}
	n, err := st.RecordFailedLogin(ctx(), "ip:1.2.3.4", now.Add(12*time.Minute), 10*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "failures older than the window do not count")
	n, err = st.CountFailedLogins(ctx(), "ip:1.2.3.4", now)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.NoError(t, st.ClearFailedLogins(ctx(), "ip:1.2.3.4"))
	n, err = st.CountFailedLogins(ctx(), "ip:1.2.3.4", now)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
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
