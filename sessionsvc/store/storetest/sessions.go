package storetest

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// testListStatusSorts: every status filter with the sorts whose pages are
// read by a merge or in id order (logout time: active sessions have none),
// and terminations on both sides of "logout" in reason order.
func testListStatusSorts(t *testing.T, st store.Store) {
	var all []*store.Session
	for i, r := range []string{"", "", protocol.ReasonLogout, protocol.ReasonIdle, protocol.ReasonManual, protocol.ReasonExpired, ""} {
		s := newSession(t, st, "7", fmt.Sprintf("s%d", i), t0.Add(time.Duration(i)*time.Minute))
		all = append(all, s)
		if r != "" {
			_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, r, r == protocol.ReasonManual, t0.Add(time.Hour-time.Duration(i)*time.Minute))
			require.NoError(t, err)
		}
	}
	ended := []string{all[2].ID, all[3].ID, all[4].ID, all[5].ID} // logout time descending
	active := []string{all[0].ID, all[1].ID, all[6].ID}
	sort.Sort(sort.Reverse(sort.StringSlice(active)))
	ids := func(q store.SessionQuery) []string {
		t.Helper()
		p, err := st.ListSessions(ctx(), q)
		require.NoError(t, err)
		var out []string
		for _, s := range p.Sessions {
			out = append(out, s.ID)
		}
		assert.Equal(t, len(out), p.Total, "total of %+v", q)
		return out
	}
	byLogout := store.SessionQuery{Sort: "logoutTime", Desc: true}
	got := ids(byLogout)
	// Where active sessions (no logout time) come depends on how the
	// database orders NULLs; within each group the order is fixed.
	if len(got) == 7 && got[0] == ended[0] {
		assert.Equal(t, append(append([]string(nil), ended...), active...), got)
	} else {
		assert.Equal(t, append(append([]string(nil), active...), ended...), got)
	}
	byLogout.ActiveOnly = true
	assert.Equal(t, active, ids(byLogout), "active sessions by logout time are in id order")
	byLogout.ActiveOnly, byLogout.Status, byLogout.IdleBefore = false, store.StatusIdle, t0.Add(24*time.Hour)
	assert.Equal(t, active, ids(byLogout))
	byLogout.Status = store.StatusTerminated
	assert.Equal(t, []string{all[3].ID, all[4].ID, all[5].ID}, ids(byLogout), "idle and expired sort before logout, manual after")
	for _, so := range []string{"userId", "ipAddress", "securityScore", "lastActive", "loginTime"} {
		got := ids(store.SessionQuery{Status: store.StatusTerminated, Sort: so})
		assert.ElementsMatch(t, []string{all[3].ID, all[4].ID, all[5].ID}, got, so)
		got = ids(store.SessionQuery{Status: store.StatusLoggedOut, Sort: so, Desc: true})
		assert.Equal(t, []string{all[2].ID}, got, so)
	}
	p, err := st.ListSessions(ctx(), store.SessionQuery{Status: store.StatusTerminated, Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 3, p.Total, "counted past the page")
}

// testListPaging: following a list page by page — by the keyset cursor
// where the page gives one, else by offset, as a client paging with page=
// does — yields exactly the one-page listing, in its order, for every sort,
// direction and filter (ties in the sort value, and active sessions that
// have no logout time, included).
func testListPaging(t *testing.T, st store.Store) {
	for i := 0; i < 20; i++ {
		s := newSession(t, st, fmt.Sprint(i%3), fmt.Sprintf("p%02d", i), t0.Add(time.Duration(i/2)*time.Minute))
		reason := map[int]string{1: protocol.ReasonLogout, 2: protocol.ReasonManual}[i%4]
		if reason != "" {
			_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, reason, false, t0.Add(time.Hour-time.Duration(i%8)*time.Minute))
			require.NoError(t, err)
		}
	}
	filters := map[string]store.SessionQuery{
		"any":        {},
		"activeOnly": {ActiveOnly: true},
		"active":     {Status: store.StatusActive, IdleBefore: t0.Add(-time.Hour)},
		"idle":       {Status: store.StatusIdle, IdleBefore: t0.Add(time.Hour)},
		"loggedOut":  {Status: store.StatusLoggedOut},
		"terminated": {Status: store.StatusTerminated},
		"user":       {UserID: "1"},
	}
	ids := func(p store.SessionPage) []string {
		out := make([]string, 0, len(p.Sessions))
		for _, s := range p.Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	for name, f := range filters {
		for _, so := range []string{"loginTime", "lastActive", "logoutTime", "userId", "ipAddress", "securityScore"} {
			for _, desc := range []bool{false, true} {
				q := f
				q.Sort, q.Desc, q.Limit = so, desc, 1000
				whole, err := st.ListSessions(ctx(), q)
				require.NoError(t, err)
				want := ids(whole)
				require.NotEmpty(t, want, "%s by %s", name, so)
				var got []string
				q.Limit = 3
				for after := ""; len(got) <= len(want); {
					q.After, q.Offset = after, len(got)
					p, err := st.ListSessions(ctx(), q)
					require.NoError(t, err, "%s by %s desc=%v after %d", name, so, desc, len(got))
					got = append(got, ids(p)...)
					after = p.Next
					if after == "" && len(p.Sessions) < q.Limit {
						break
					}
				}
				assert.Equal(t, want, got, "%s by %s desc=%v: pages differ from the whole list", name, so, desc)
			}
		}
	}
}

// testSearchLookup: a search term's lookup tokens match the sessions whose
// user names have them, whatever the other columns hold, and no longer once
// the session is deleted.
func testSearchLookup(t *testing.T, st store.Store) {
	named := func(user, name, lookup string) *store.Session {
		s := &store.Session{UserID: user, IP: "192.0.2.1", LoginTime: t0, LastActive: t0, UserLookup: lookup}
		require.NoError(t, st.CreateSession(ctx(), s, []store.SessionKey{{Key: "sid:" + name, Kind: store.KeySession, ExpiresAt: t0.Add(time.Hour)}}, nil))
		return s
	}
	a := named("31", "la", "d:aa01 u:bb01 e:cc01")
	b := named("31", "lb", "u:bb01")
	named("32", "lc", "u:bb02 e:cc02")
	named("33", "ld", "")
	search := func(term string, lookup ...string) []string {
		t.Helper()
		p, err := st.ListSessions(ctx(), store.SessionQuery{Search: term, SearchLookup: lookup, Sort: "userId"})
		require.NoError(t, err)
		var out []string
		for _, s := range p.Sessions {
			out = append(out, s.ID)
		}
		sort.Strings(out)
		return out
	}
	both := []string{a.ID, b.ID}
	sort.Strings(both)
	assert.Equal(t, both, search("alice", "u:bb01"), "a name matches by its token only")
	assert.Equal(t, []string{a.ID}, search("alice@example.com", "e:cc01", "e:zz99"))
	assert.Empty(t, search("nobody", "u:bb0"), "a token matches whole, not a prefix")
	assert.Empty(t, search("bb01"), "the tokens are not searched as text")
	assert.Len(t, search("192.0.2", "u:bb02"), 4, "text matches and token matches together")
	require.NoError(t, st.DeleteSession(ctx(), a.ID, t0.Add(time.Hour)))
	assert.Equal(t, []string{b.ID}, search("alice", "u:bb01"))
	assert.Empty(t, search("alice@example.com", "e:cc01"), "a deleted session leaves the lookup index")
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
	// s moved; the ended session's mark may count (it is never shown).
	assert.GreaterOrEqual(t, n, 1)
	assert.LessOrEqual(t, n, 2)
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

// testDeleteEnded: the admin API's clean-inactive deletes every ended
// session and its keys, whenever it ended, and nothing else: the active
// sessions, the alerts (sent or not), the failed-login rows (the dashboard
// sign-in throttle) and the login counters (lockouts) stay.
func testDeleteEnded(t *testing.T, st store.Store) {
	live := newSession(t, st, "u", "live", t0)
	gone := newSession(t, st, "u", "gone", t0)
	later := newSession(t, st, "v", "later", t0)
	_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{gone.ID}}, protocol.ReasonLogout, false, t0.Add(time.Minute))
	require.NoError(t, err)
	// Ended "in the future" (another replica's clock): deleted all the same.
	_, err = st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{later.ID}}, protocol.ReasonManual, true, t0.Add(1000*time.Hour))
	require.NoError(t, err)

	require.NoError(t, st.EnqueueAlerts(ctx(), []store.Alert{
		{Event: "sent", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: t0},
		{Event: "pending", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: t0.Add(time.Hour)},
	}))
	claimed, err := st.ClaimAlerts(ctx(), "r1", 1, t0, time.Minute)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, st.MarkAlertSent(ctx(), claimed[0].ID, t0))
	_, err = st.RecordFailedLogin(ctx(), "dashboard:10.0.0.9", t0, time.Hour)
	require.NoError(t, err)
	_, err = st.RecordLoginFailure(ctx(), failure("ip:10.0.0.9", t0, 1), nil)
	require.NoError(t, err)

	n, err := st.DeleteEnded(ctx())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, id := range []string{gone.ID, later.ID} {
		_, err = st.GetSession(ctx(), id)
		assert.ErrorIs(t, err, store.ErrNotFound)
	}
	_, err = st.FindSessionByKeys(ctx(), []string{"sid:gone"})
	assert.ErrorIs(t, err, store.ErrNotFound)
	got, err := st.FindSessionByKeys(ctx(), []string{"sid:live"})
	require.NoError(t, err)
	assert.Equal(t, live.ID, got.ID)

	alerts, err := st.ListAlerts(ctx(), false, 10)
	require.NoError(t, err)
	assert.Len(t, alerts, 2, "alerts are not the sessions'")
	c, err := st.CountFailedLogins(ctx(), "dashboard:10.0.0.9", t0)
	require.NoError(t, err)
	assert.Equal(t, 1, c, "the sign-in throttle's counter stays")
	locks, err := st.ActiveLockouts(ctx(), []string{"ip:10.0.0.9"}, t0)
	require.NoError(t, err)
	assert.Len(t, locks, 1, "the lockout stays")

	n, err = st.DeleteEnded(ctx())
	require.NoError(t, err)
	assert.Equal(t, 0, n)
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

// testCheckRefresh: CheckRefresh judges a refresh the upstream refused. It
// refuses the keys of an ended session with the session's termination
// reason, treats a rotated key of a live session as reuse (the session
// ends), allows the keys of a live session without rotating anything, and
// answers ErrNotFound for keys no session knows.
func testCheckRefresh(t *testing.T, st store.Store) {
	now := t0.Add(time.Minute)

	t.Run("live session allowed, nothing rotated or logged", func(t *testing.T) {
		s := newSession(t, st, "u", "live", t0)
		before := allChanges(t, st, 0, now)
		out, err := st.CheckRefresh(ctx(), []string{"fp:r-live"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Allowed: true}, out)
		assert.Equal(t, before, allChanges(t, st, 0, now), "an allowed check logs nothing")
		got, err := st.GetSession(ctx(), s.ID)
		require.NoError(t, err)
		assert.True(t, got.Active)
		// The key was not rotated: a successful refresh may still present it.
		out, err = st.Refresh(ctx(), []string{"fp:r-live"}, []store.SessionKey{{Key: "fp:r2-live", Kind: store.KeyRefresh}}, now)
		require.NoError(t, err)
		assert.True(t, out.Allowed, "CheckRefresh must not rotate the presented key")
	})

	t.Run("rotated key of a live session is reuse", func(t *testing.T) {
		s := newSession(t, st, "u", "reuse", t0)
		out, err := st.Refresh(ctx(), []string{"fp:r-reuse"}, []store.SessionKey{{Key: "fp:r2-reuse", Kind: store.KeyRefresh}}, now)
		require.NoError(t, err)
		require.True(t, out.Allowed)

		out, err = st.CheckRefresh(ctx(), []string{"fp:r-reuse"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: protocol.ReasonReuse}, out)
		got, err := st.GetSession(ctx(), s.ID)
		require.NoError(t, err)
		assert.False(t, got.Active)
		assert.Equal(t, protocol.ReasonReuse, got.TerminationReason)
		revoked := map[string]string{}
		for _, c := range allChanges(t, st, 0, now) {
			revoked[c.Key] = c.Reason
		}
		for _, k := range []string{"sid:reuse", "fp:a-reuse", "fp:r-reuse", "fp:r2-reuse"} {
			assert.Equal(t, protocol.ReasonReuse, revoked[k], "%s revoked for reuse", k)
		}

		// The newest refresh token of the ended session is refused too.
		out, err = st.CheckRefresh(ctx(), []string{"fp:r2-reuse"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: protocol.ReasonReuse}, out)
	})

	t.Run("ended session refused with its reason", func(t *testing.T) {
		// Each ender ends the session named name; the idle and expired
		// sessions are the only ones old enough for EndIdle and EndOld.
		enders := []struct {
			name, reason string
			login        time.Time
			end          func(s *store.Session) error
		}{
			{"logout", protocol.ReasonLogout, t0, func(s *store.Session) error {
				_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonLogout, false, now)
				return err
			}},
			{"manual", protocol.ReasonManual, t0, func(s *store.Session) error {
				_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonManual, true, now)
				return err
			}},
			{"blocked", protocol.ReasonBlocked, t0, func(s *store.Session) error {
				return st.SetBlocked(ctx(), s.UserID, true, now)
			}},
			{"expired", protocol.ReasonExpired, t0.Add(-48 * time.Hour), func(*store.Session) error {
				_, err := st.EndOld(ctx(), t0.Add(-24*time.Hour), now)
				return err
			}},
			{"idle", protocol.ReasonIdle, t0.Add(-12 * time.Hour), func(*store.Session) error {
				_, err := st.EndIdle(ctx(), t0.Add(-6*time.Hour), now)
				return err
			}},
		}
		for _, e := range enders {
			s := newSession(t, st, "user-"+e.name, e.name, e.login)
			require.NoError(t, e.end(s), e.name)
			out, err := st.CheckRefresh(ctx(), []string{"fp:r-" + e.name}, now)
			require.NoError(t, err, e.name)
			assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: e.reason}, out, e.name)
			got, err := st.GetSession(ctx(), s.ID)
			require.NoError(t, err)
			assert.Equal(t, e.reason, got.TerminationReason, "%s: the check keeps the session's reason", e.name)
		}
	})

	t.Run("rotated key of an ended session keeps the session's reason", func(t *testing.T) {
		s := newSession(t, st, "u", "rotout", t0)
		_, err := st.Refresh(ctx(), []string{"fp:r-rotout"}, []store.SessionKey{{Key: "fp:r2-rotout", Kind: store.KeyRefresh}}, now)
		require.NoError(t, err)
		_, err = st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonLogout, false, now)
		require.NoError(t, err)
		out, err := st.CheckRefresh(ctx(), []string{"fp:r-rotout"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: protocol.ReasonLogout}, out)
	})

	t.Run("unknown keys are ErrNotFound", func(t *testing.T) {
		for _, keys := range [][]string{{"fp:nobody"}, {}, {""}} {
			_, err := st.CheckRefresh(ctx(), keys, now)
			assert.ErrorIs(t, err, store.ErrNotFound, "%q", keys)
		}
		// A deleted session's keys name nothing any more.
		s := newSession(t, st, "u", "deleted", t0)
		require.NoError(t, st.DeleteSession(ctx(), s.ID, now))
		_, err := st.CheckRefresh(ctx(), []string{"fp:r-deleted"}, now)
		assert.ErrorIs(t, err, store.ErrNotFound)
	})
}

// testSessionLookups: SessionAppIDs names each session as the app sees it
// (the session claim, else the newest access-token key); UserIDByLookup
// finds the user of the newest session holding a lookup token.
func testSessionLookups(t *testing.T, st store.Store) {
	withSid := newSession(t, st, "u1", "claim", t0)
	fpOnly := &store.Session{UserID: "u2", LoginTime: t0, LastActive: t0, UserLookup: "tok-a tok-b"}
	require.NoError(t, st.CreateSession(ctx(), fpOnly, []store.SessionKey{
		{Key: "fp:older", Kind: store.KeyAccess, ExpiresAt: t0.Add(time.Hour)},
		{Key: "fp:newer", Kind: store.KeyAccess, ExpiresAt: t0.Add(2 * time.Hour)},
		{Key: "fp:refresh-only", Kind: store.KeyRefresh, ExpiresAt: t0.Add(48 * time.Hour)},
	}, nil))
	refreshOnly := &store.Session{UserID: "u3", LoginTime: t0.Add(time.Hour), LastActive: t0.Add(time.Hour), UserLookup: "tok-a"}
	require.NoError(t, st.CreateSession(ctx(), refreshOnly, []store.SessionKey{
		{Key: "fp:r-only", Kind: store.KeyRefresh, ExpiresAt: t0.Add(48 * time.Hour)},
	}, nil))

	ids, err := st.SessionAppIDs(ctx(), []string{withSid.ID, fpOnly.ID, refreshOnly.ID, "sess_unknown", ""})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{withSid.ID: "claim", fpOnly.ID: "fp:newer"}, ids)
	ids, err = st.SessionAppIDs(ctx(), nil)
	require.NoError(t, err)
	assert.Empty(t, ids)
	// A page's worth (1,000 and more ids are looked up in chunks read at
	// once): the known ones anywhere in it.
	many := make([]string, 1300)
	for i := range many {
		many[i] = fmt.Sprintf("sess_unknown_%d", i)
	}
	many[0], many[700], many[1299] = refreshOnly.ID, fpOnly.ID, withSid.ID
	ids, err = st.SessionAppIDs(ctx(), many)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{withSid.ID: "claim", fpOnly.ID: "fp:newer"}, ids)

	uid, err := st.UserIDByLookup(ctx(), []string{"tok-a"})
	require.NoError(t, err)
	assert.Equal(t, "u3", uid, "the newest session holding the token")
	uid, err = st.UserIDByLookup(ctx(), []string{"tok-unknown", "tok-b"})
	require.NoError(t, err)
	assert.Equal(t, "u2", uid, "any of the tokens")
	for _, toks := range [][]string{{"tok-unknown"}, nil, {""}} {
		_, err = st.UserIDByLookup(ctx(), toks)
		assert.ErrorIs(t, err, store.ErrNotFound, "%q", toks)
	}
}

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

// SearchPage checks that a search page of many rows by login time (the
// admin list's default: 1,000 rows) holds exactly the matching sessions, in
// order (login time, then id), over a table where matches and other sessions
// are mixed, with equal login times, ended sessions and a match by another
// column than the country; and that pages by cursor and by offset add up
// to it. The test on PostgreSQL also runs with the page read through
// session_search (store.WalkSearchTable).
func SearchPage(t *testing.T, st store.Store) {
	var all []*store.Session
	for i := 0; i < 90; i++ {
		country, user := "France", fmt.Sprintf("u%d", i%5)
		if i%3 == 0 {
			country = "Germany"
		}
		if i == 40 {
			user = "GERMANY-fan" // matches by user id, case aside
		}
		login := t0.Add(time.Duration(i/4) * time.Minute) // four sessions per login time
		s := &store.Session{
			UserID: user, IP: fmt.Sprintf("10.1.%d.%d", i/10, i%10), UserAgent: "Mozilla/5.0", LoginTime: login, LastActive: login,
			BrowserName: "Firefox 130", OSName: "Linux", Geo: &store.GeoLocation{Country: country, CountryCode: "XX"}, SecurityScore: 90,
		}
		name := fmt.Sprintf("sp%02d", i)
		require.NoError(t, st.CreateSession(ctx(), s, []store.SessionKey{{Key: "sid:" + name, Kind: store.KeySession, ExpiresAt: login.Add(time.Hour)}}, nil))
		if i%4 == 1 {
			_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonLogout, false, t0.Add(time.Hour))
			require.NoError(t, err)
		}
		all = append(all, s)
	}
	var want []string
	for _, s := range all {
		if s.Geo.Country == "Germany" || s.UserID == "GERMANY-fan" {
			want = append(want, s.ID)
		}
	}
	login := map[string]time.Time{}
	for _, s := range all {
		login[s.ID] = s.LoginTime
	}
	sort.Slice(want, func(i, j int) bool {
		a, b := want[i], want[j]
		if !login[a].Equal(login[b]) {
			return login[a].After(login[b])
		}
		return a > b
	})
	require.Greater(t, len(want), 25)
	ids := func(p store.SessionPage) []string {
		out := make([]string, 0, len(p.Sessions))
		for _, s := range p.Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	q := store.SessionQuery{Search: "germany", Sort: "loginTime", Desc: true, Limit: 1000}
	whole, err := st.ListSessions(ctx(), q)
	require.NoError(t, err)
	assert.Equal(t, want, ids(whole), "the page holds every match, newest login first, ties by id")
	assert.Equal(t, len(want), whole.Total)
	assert.Equal(t, store.CountExact, whole.Count)
	assert.Empty(t, whole.Next)

	q.Desc = false
	asc, err := st.ListSessions(ctx(), q)
	require.NoError(t, err)
	rev := append([]string(nil), want...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	assert.Equal(t, rev, ids(asc), "ascending: oldest login first")

	q.Desc, q.Limit = true, 7
	var byCursor, byOffset []string
	for after, n := "", 0; n < 10; n++ {
		q.After = after
		p, err := st.ListSessions(ctx(), q)
		require.NoError(t, err)
		byCursor = append(byCursor, ids(p)...)
		if after = p.Next; after == "" {
			break
		}
	}
	assert.Equal(t, want, byCursor, "pages by cursor")
	q.After = ""
	for off := 0; off < len(want); off += q.Limit {
		q.Offset = off
		p, err := st.ListSessions(ctx(), q)
		require.NoError(t, err)
		byOffset = append(byOffset, ids(p)...)
	}
	assert.Equal(t, want, byOffset, "pages by offset")

	// A term holding the separator of the joined search columns (\x1f)
	// matches by column, never across two of them (a term too short for
	// the trigram indexes, which would not find it either).
	q = store.SessionQuery{Search: "1\x1f", Sort: "loginTime", Desc: true, Limit: 1000}
	across, err := st.ListSessions(ctx(), q)
	require.NoError(t, err)
	assert.Empty(t, ids(across), "no column holds the term")
}
