package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

func TestInternalKeyRequired(t *testing.T) {
	e := newEnv(t)
	paths := []struct{ method, path string }{
		{"POST", protocol.PathSessions}, {"POST", protocol.PathTokens}, {"POST", protocol.PathRevoke},
		{"POST", protocol.PathActivity}, {"POST", protocol.PathFailed}, {"GET", protocol.PathSync},
	}
	for _, p := range paths {
		for _, key := range []string{"", "wrong-key-0123456789", testKey + "x"} {
			t.Run(p.path+"/"+key, func(t *testing.T) {
				hdr := map[string]string{}
				if key != "" {
					hdr[protocol.HeaderKey] = key
				}
				r := e.do(p.method, p.path, "{}", hdr)
				assert.Equal(t, 401, r.status)
				errObj := r.body["error"].(map[string]any)
				assert.Equal(t, float64(401), errObj["status"])
				assert.Equal(t, "UnauthorizedError", errObj["name"])
				assert.Contains(t, errObj["message"], protocol.HeaderKey)
			})
		}
	}
}

func TestRegisterRevokeAndSync(t *testing.T) { onBackends(t, testRegisterRevokeAndSync) }

func testRegisterRevokeAndSync(t *testing.T, e *env) {
	tok := token(t, "alice", "s-1", nil)
	id := e.login("alice", tok, "fp:refresh-1")
	assert.Regexp(t, `^sess_`, id)

	epoch, err := e.st.Epoch(t.Context())
	require.NoError(t, err)
	first := e.syncPage(epoch, 0, 0)
	assert.True(t, first.Reset)
	assert.Empty(t, first.Changes)

	// Logout through the plugin's revoke call.
	r := e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"sid:s-1"}})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, true, r.body["found"])
	assert.Equal(t, id, r.body["sessionId"])

	// The log was empty, so the client is still at cursor 0: its next call
	// is a snapshot again, holding the three revoked keys.
	assert.Equal(t, int64(0), first.Cursor)
	delta := e.syncPage(epoch, first.Cursor, 0)
	assert.True(t, delta.Reset)
	assert.Len(t, delta.Changes, 3)
	assert.EqualValues(t, 3, delta.Total, "a snapshot says how big it is")
	keys := map[string]protocol.Change{}
	for _, c := range delta.Changes {
		keys[c.Key] = c
	}
	require.Contains(t, keys, "sid:s-1")
	require.Contains(t, keys, "fp:"+userauth.Fingerprint(tok))
	require.Contains(t, keys, "fp:refresh-1")
	assert.Equal(t, protocol.ReasonLogout, keys["sid:s-1"].Reason)
	tokKey := "fp:" + userauth.Fingerprint(tok)
	assert.Greater(t, keys["fp:refresh-1"].Exp, keys[tokKey].Exp, "each token's entry expires with it")
	assert.Equal(t, keys["fp:refresh-1"].Exp, keys["sid:s-1"].Exp,
		"the session's key lasts as long as its refresh token: every access token it mints carries the session claim")

	// Revoking keys nobody registered still publishes them.
	r = e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"fp:never-seen"}, Reason: protocol.ReasonManual})
	require.Equal(t, 200, r.status)
	assert.Equal(t, false, r.body["found"])
	d2 := e.syncPage(epoch, delta.Cursor, 0)
	require.Len(t, d2.Changes, 1)
	assert.Equal(t, "fp:never-seen", d2.Changes[0].Key)
	assert.Equal(t, protocol.ReasonManual, d2.Changes[0].Reason)

	// Snapshot pages and a foreign epoch.
	p1 := e.syncPage(epoch, 0, 2)
	assert.True(t, p1.Reset)
	assert.True(t, p1.More)
	assert.Len(t, p1.Changes, 2)
	p2 := e.syncPage(epoch, p1.Cursor, 2)
	assert.False(t, p2.Reset)
	assert.Len(t, p2.Changes, 2)
	assert.False(t, p2.More)
	foreign := e.syncPage("not-this-store", d2.Cursor, 0)
	assert.True(t, foreign.Reset)
	assert.Equal(t, epoch, foreign.Epoch)
	assert.Len(t, foreign.Changes, 4)
	assert.Equal(t, d2.Cursor, foreign.Cursor)
	assert.Equal(t, e.clock.Now().Unix(), foreign.Now)

	// A logout naming its session's key and a key no session holds
	// revokes both, in the same log write.
	id2 := e.login("alice", token(t, "alice", "s-2", nil), "")
	r = e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"sid:s-2", "fp:stray-refresh", "sid:s-1"}})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, id2, r.body["sessionId"])
	d3 := e.syncPage(epoch, d2.Cursor, 0)
	got := map[string]protocol.Change{}
	for _, c := range d3.Changes {
		got[c.Key] = c
	}
	require.Contains(t, got, "sid:s-2")
	require.Contains(t, got, "fp:stray-refresh", "a key no session holds is revoked beside the session")
	assert.Greater(t, got["fp:stray-refresh"].Exp, e.clock.Now().Unix())
	assert.NotContains(t, got, "sid:s-1", "a key of an ended session keeps its entry (and expiry)")

	// The binary form is the same page, in protocol's encoding.
	for _, c := range []int64{0, p1.Cursor} {
		path := fmt.Sprintf("%s?epoch=%s&cursor=%d&limit=2", protocol.PathSync, epoch, c)
		bin := e.internal("GET", path+"&format=binary", nil)
		require.Equal(t, 200, bin.status, string(bin.raw))
		assert.Equal(t, protocol.ContentTypeBinaryPage, bin.header.Get("Content-Type"))
		js := e.syncPage(epoch, c, 2)
		want, err := protocol.AppendBinaryPage(nil, &js)
		require.NoError(t, err)
		assert.Equal(t, want, bin.raw, "cursor %d", c)
	}

	for _, q := range []string{"cursor=-1", "cursor=abc", "limit=0", "limit=1000001", "cursor=99999999999999999999", "format=xml"} {
		r := e.internal("GET", protocol.PathSync+"?"+q, nil)
		assert.Equal(t, 400, r.status, q)
	}
	// A bad format is refused before a long-poll waits (it answered 400
	// only after the whole wait).
	head := e.syncPage(epoch, 0, 0).Cursor
	start := time.Now()
	r = e.internal("GET", fmt.Sprintf("%s?epoch=%s&cursor=%d&wait=20s&format=xml", protocol.PathSync, epoch, head), nil)
	assert.Equal(t, 400, r.status)
	assert.Less(t, time.Since(start), 10*time.Second, "answered without waiting for the log to move")
}

// onBackends runs fn on a server over SQLite and over PostgreSQL.
func onBackends(t *testing.T, fn func(t *testing.T, e *env), opts ...envOpt) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, newEnvWithStore(t, b.Open(t), opts...)) })
	}
}

func TestRefreshReuse(t *testing.T) { onBackends(t, testRefreshReuse) }

func testRefreshReuse(t *testing.T, e *env) {
	tok := token(t, "bob", "s-b", nil)
	id := e.login("bob", tok, "fp:r1")
	epoch, _ := e.st.Epoch(t.Context())
	head := e.syncPage(epoch, 0, 0).Cursor

	r := e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:r1"}, Status: 200,
		Keys: []string{"fp:a2"}, RefreshKeys: []string{"fp:r2"}, ExpiresAt: time.Now().Add(time.Hour).Unix()})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, protocol.DecisionAllow, r.body["decision"])
	assert.Equal(t, id, r.body["sessionId"])

	// A failed refresh with the current token changes nothing.
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:r2"}, Status: 401})
	require.Equal(t, 200, r.status)
	assert.Equal(t, protocol.DecisionAllow, r.body["decision"])

	// The rotated token comes back (stolen copy): the whole session ends.
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:r1"}, Status: 200,
		Keys: []string{"fp:a3"}, RefreshKeys: []string{"fp:r3"}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, protocol.DecisionDeny, r.body["decision"])
	assert.Equal(t, protocol.ReasonReuse, r.body["reason"])
	sess, err := e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.False(t, sess.Active)
	assert.Equal(t, protocol.ReasonReuse, sess.TerminationReason)

	revoked := map[string]string{}
	for _, c := range e.syncPage(epoch, head, 0).Changes {
		revoked[c.Key] = c.Reason
	}
	for _, k := range []string{"sid:s-b", "fp:r1", "fp:a2", "fp:r2", "fp:a3", "fp:r3"} {
		assert.Equal(t, protocol.ReasonReuse, revoked[k], "key %s revoked for reuse", k)
	}

	// The legitimate holder's next refresh is refused too (session ended).
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:r2"}, Status: 200, Keys: []string{"fp:a4"}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, protocol.DecisionDeny, r.body["decision"])
	assert.Equal(t, protocol.ReasonReuse, r.body["reason"])

	// A refresh of a logged-out session is refused with reason logout.
	tok2 := token(t, "bob", "s-c", nil)
	e.login("bob", tok2, "fp:rc")
	require.Equal(t, 200, e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"sid:s-c"}}).status)
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:rc"}, Status: 200})
	assert.Equal(t, protocol.DecisionDeny, r.body["decision"])
	assert.Equal(t, protocol.ReasonLogout, r.body["reason"])

	// A rotated token the upstream refused is reuse all the same.
	idD := e.login("bob", token(t, "bob", "s-d", nil), "fp:rd")
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:rd"}, Status: 200, RefreshKeys: []string{"fp:rd2"}})
	require.Equal(t, protocol.DecisionAllow, r.body["decision"])
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:rd"}, Status: 401})
	assert.Equal(t, protocol.DecisionDeny, r.body["decision"])
	assert.Equal(t, protocol.ReasonReuse, r.body["reason"])
	sess, err = e.st.GetSession(t.Context(), idD)
	require.NoError(t, err)
	assert.Equal(t, protocol.ReasonReuse, sess.TerminationReason)

	// Unknown tokens: nothing to judge by.
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:unknown"}, Status: 200})
	assert.Equal(t, protocol.DecisionAllow, r.body["decision"])
	r = e.internal("POST", protocol.PathTokens, protocol.RefreshRequest{PresentedKeys: []string{"fp:unknown"}, Status: 401})
	assert.Equal(t, protocol.DecisionAllow, r.body["decision"])
}

func TestActivityCoalescing(t *testing.T) {
	e := newEnv(t)
	tok := token(t, "carol", "s-act", nil)
	id := e.login("carol", tok, "")
	base := e.clock.Now()
	e.clock.Add(10 * time.Minute)
	marks := []protocol.Activity{
		{Key: "sid:s-act", At: base.Add(2 * time.Minute).UnixMilli()},
		{Key: "fp:" + userauth.Fingerprint(tok), At: base.Add(5 * time.Minute).UnixMilli()},
		{Key: "sid:s-act", At: base.Add(1 * time.Minute).UnixMilli()},
		{Key: "fp:nobody", At: base.Add(time.Minute).UnixMilli()},
	}
	r := e.internal("POST", protocol.PathActivity, marks)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, float64(4), r.body["accepted"])
	assert.Equal(t, float64(1), r.body["updated"])
	s, err := e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(base.Add(5*time.Minute)), "got %v", s.LastActive)

	// Older marks never move it back.
	r = e.internal("POST", protocol.PathActivity, []protocol.Activity{{Key: "sid:s-act", At: base.Add(3 * time.Minute).UnixMilli()}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, float64(0), r.body["updated"])

	// Future marks are clamped to now.
	r = e.internal("POST", protocol.PathActivity, []protocol.Activity{{Key: "sid:s-act", At: base.Add(24 * time.Hour).UnixMilli()}})
	require.Equal(t, 200, r.status)
	s, err = e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(e.clock.Now()), "future mark clamped: %v", s.LastActive)

	r = e.internal("POST", protocol.PathActivity, []protocol.Activity{})
	assert.Equal(t, 200, r.status)
}

func TestInternalBadInput(t *testing.T) {
	e := newEnv(t)
	big := `[` + strings.Repeat(`{"key":"sid:x","at":1},`, 60000) + `{"key":"sid:x","at":1}]`
	cases := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"malformed", protocol.PathSessions, `{"userId":`, 400, "unexpected end"},
		{"syntax", protocol.PathSessions, `{"userId" "x"}`, 400, "invalid JSON"},
		{"unknown field", protocol.PathSessions, `{"userId":"u","keys":["sid:a"],"admin":true}`, 400, "unknown field"},
		{"wrong type", protocol.PathSessions, `{"userId":5}`, 400, "userId"},
		{"empty body", protocol.PathSessions, ``, 400, "required"},
		{"trailing", protocol.PathSessions, `{"userId":"u","keys":["sid:a"]} {}`, 400, "unexpected data"},
		{"no user", protocol.PathSessions, `{"keys":["sid:a"]}`, 400, "userId"},
		{"no keys", protocol.PathSessions, `{"userId":"u"}`, 400, "keys"},
		{"bad key prefix", protocol.PathSessions, `{"userId":"u","keys":["user:a"]}`, 400, "must start with"},
		{"empty key value", protocol.PathSessions, `{"userId":"u","keys":["fp:"]}`, 400, "empty value"},
		{"key with a control character", protocol.PathSessions, `{"userId":"u","keys":["fp:a\tb"]}`, 400, "control character"},
		{"key with C1", protocol.PathSessions, `{"userId":"u","keys":["sid:a\u0085b"]}`, 400, "control character"},
		{"bad ip", protocol.PathSessions, `{"userId":"u","keys":["sid:a"],"ip":"999.1.1.1"}`, 400, "IP address"},
		{"negative expiry", protocol.PathSessions, `{"userId":"u","keys":["sid:a"],"expiresAt":-5}`, 400, "Unix times"},
		{"expiry past year 9999", protocol.PathSessions, `{"userId":"u","keys":["sid:a"],"expiresAt":9223372036854775807}`, 400, "Unix times"},
		{"refresh no keys", protocol.PathTokens, `{"status":200}`, 400, "presentedKeys"},
		{"refresh bad status", protocol.PathTokens, `{"presentedKeys":["fp:a"],"status":42}`, 400, "status"},
		{"revoke bad reason", protocol.PathRevoke, `{"keys":["fp:a"],"reason":"because"}`, 400, "reason"},
		{"activity object", protocol.PathActivity, `{"key":"sid:a"}`, 400, "must be"},
		{"activity not a list", protocol.PathActivity, `{"key":"sid:a","at":1}`, 400, "JSON"},
		{"activity too big", protocol.PathActivity, big, 413, "larger than"},
		{"failed no ip", protocol.PathFailed, `{"status":401}`, 400, "ip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.internal("POST", tc.path, tc.body)
			require.Equal(t, tc.status, r.status, string(r.raw))
			errObj, ok := r.body["error"].(map[string]any)
			require.True(t, ok, string(r.raw))
			assert.Contains(t, errObj["message"], tc.msg)
			assert.Equal(t, float64(tc.status), errObj["status"])
		})
	}
	// The internal API ignores the declared type (the body is JSON or a 400).
	r := e.do("POST", protocol.PathSessions, `{}`, map[string]string{protocol.HeaderKey: testKey, "Content-Type": "text/plain"})
	assert.Equal(t, 400, r.status)
	// The public APIs refuse non-JSON bodies.
	r = e.do("PUT", "/magic-sessionmanager/settings", `a=b`, map[string]string{"Authorization": "Bearer " + testAdmin,
		"Content-Type": "application/x-www-form-urlencoded"})
	assert.Equal(t, 415, r.status)
}

func TestEnricherDenyAndAlerts(t *testing.T) {
	fe := &fakeEnricher{result: enrich.Result{Score: 10, Deny: true, DenyReason: protocol.ReasonPolicy, DenyMessage: "Logins from this country are blocked.",
		Alerts: []store.Alert{{Event: "login.blocked", Channel: "email"}}}}
	e := newEnv(t, func(c *Config) { c.Enricher = fe })
	r := e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "dan", Keys: []string{"sid:d1", "fp:d1"}, IP: "198.51.100.1"})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, protocol.DecisionDeny, r.body["decision"])
	assert.Equal(t, protocol.ReasonPolicy, r.body["reason"])
	assert.Equal(t, "Logins from this country are blocked.", r.body["message"])
	assert.Equal(t, float64(10), r.body["score"])
	assert.Empty(t, r.body["sessionId"])
	p, err := e.st.ListSessions(t.Context(), store.SessionQuery{UserID: "dan"})
	require.NoError(t, err)
	assert.Equal(t, 0, p.Total, "denied logins are not stored")
	epoch, _ := e.st.Epoch(t.Context())
	snap := e.syncPage(epoch, 0, 0)
	require.Len(t, snap.Changes, 2, "the denied tokens are revoked")
	assert.Equal(t, protocol.ReasonPolicy, snap.Changes[0].Reason)
	alerts, err := e.st.ListAlerts(t.Context(), false, 10)
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	assert.Equal(t, "login.blocked", alerts[0].Event)

	// Allowed, enriched login; then an admin terminate raises alerts.
	fe.result = enrich.Result{Score: 70, DeviceType: "mobile", BrowserName: "Safari 18", OSName: "iOS 18",
		Geo: &store.GeoLocation{Country: "France", CountryCode: "FR"}, Reasons: []string{"new country"}}
	r = e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "dan", Keys: []string{"sid:d2"}})
	require.Equal(t, protocol.DecisionAllow, r.body["decision"])
	assert.Equal(t, float64(70), r.body["score"])
	id := r.body["sessionId"].(string)
	s, err := e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, "mobile", s.DeviceType)
	assert.Equal(t, "FR", s.Geo.CountryCode)
	r = e.admin("POST", "/magic-sessionmanager/sessions/"+id+"/terminate", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []string{protocol.ReasonManual}, fe.ended)
	alerts, err = e.st.ListAlerts(t.Context(), false, 10)
	require.NoError(t, err)
	assert.Len(t, alerts, 2)

	// Failed logins are counted by the server's guard (this enricher brings
	// none): the settings' maxFailedLogins (5) lock the identifier.
	for i := 1; i <= 5; i++ {
		r = e.internal("POST", protocol.PathFailed, protocol.FailedLogin{IP: "198.51.100.1", Identifier: "dan", Status: 401})
		require.Equal(t, 200, r.status)
		assert.Equal(t, i == 5, r.body["locked"])
	}
}

func TestRegisterBlockedUserDenied(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.st.SetBlocked(t.Context(), "mallory", true, e.clock.Now()))
	r := e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "mallory", Keys: []string{"sid:m"}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, protocol.DecisionDeny, r.body["decision"])
	assert.Equal(t, protocol.ReasonBlocked, r.body["reason"])
}

func TestDatabaseDownIs503(t *testing.T) { onBackends(t, testDatabaseDown) }

func testDatabaseDown(t *testing.T, e *env) {
	require.NoError(t, e.st.Close())
	checks := []struct {
		name string
		r    func() resp
	}{
		{"register", func() resp {
			return e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "u", Keys: []string{"sid:x"}})
		}},
		{"sync", func() resp { return e.internal("GET", protocol.PathSync+"?cursor=0", nil) }},
		{"activity", func() resp {
			return e.internal("POST", protocol.PathActivity, []protocol.Activity{{Key: "sid:x", At: 1}})
		}},
		{"admin", func() resp { return e.admin("GET", "/magic-sessionmanager/sessions", nil) }},
		{"user", func() resp {
			return e.user(token(t, "u", "s", nil), "GET", "/api/magic-sessionmanager/my-sessions", nil)
		}},
		{"readyz", func() resp { return e.do("GET", "/readyz", nil, nil) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r := c.r()
			require.Equal(t, 503, r.status, string(r.raw))
			errObj := r.body["error"].(map[string]any)
			assert.Equal(t, "ServiceUnavailableError", errObj["name"])
			assert.NotContains(t, string(r.raw), "goroutine")
			assert.Equal(t, "1", r.header.Get("Retry-After"))
		})
	}
	assert.Equal(t, 200, e.do("GET", "/healthz", nil, nil).status, "liveness does not depend on the database")
}

func TestMetricsAndHealth(t *testing.T) {
	e := newEnv(t)
	e.login("m", token(t, "m", "s-m", nil), "")
	e.internal("POST", protocol.PathActivity, []protocol.Activity{{Key: "sid:s-m", At: time.Now().UnixMilli()}})
	e.internal("GET", protocol.PathSync+"?cursor=0", nil)
	assert.Equal(t, 200, e.do("GET", "/readyz", nil, nil).status)
	r := e.do("GET", "/metrics", nil, nil)
	require.Equal(t, 200, r.status)
	body := string(r.raw)
	for _, m := range []string{
		`meshsession_http_requests_total{code="200",route="POST /internal/v1/sessions"} 1`,
		`meshsession_http_request_duration_seconds_bucket{route="GET /internal/v1/sync"`,
		`meshsession_sessions_active 1`,
		`meshsession_feed_cursor 0`,
		`meshsession_activity_batch_size_count 1`,
	} {
		assert.Contains(t, body, m)
	}
	r = e.do("GET", "/nope", nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "NotFoundError", r.body["error"].(map[string]any)["name"])
	r = e.do("POST", protocol.PathSync, nil, nil)
	assert.Equal(t, 405, r.status)
	assert.Equal(t, "GET", r.header.Get("Allow"))
	assert.Equal(t, "MethodNotAllowedError", r.body["error"].(map[string]any)["name"])
}

func FuzzInternalBodies(f *testing.F) {
	e := newEnv(f)
	f.Add(protocol.PathSessions, `{"userId":"u","keys":["sid:a"]}`)
	f.Add(protocol.PathActivity, `[{"key":"fp:x","at":1700000000000}]`)
	f.Add(protocol.PathTokens, `{"presentedKeys":["fp:r"],"status":200}`)
	f.Add(protocol.PathRevoke, `{"keys":["sid:a"]}`)
	f.Add(protocol.PathSync+"?cursor=", `x`)
	paths := []string{protocol.PathSessions, protocol.PathActivity, protocol.PathTokens, protocol.PathRevoke, protocol.PathFailed}
	f.Fuzz(func(t *testing.T, path, body string) {
		e.t = t
		p := paths[len(path)%len(paths)]
		r := e.internal("POST", p, body)
		if r.status >= 500 {
			t.Fatalf("%s %q: status %d: %s", p, body, r.status, r.raw)
		}
		if r.status != 200 {
			var eb protocol.Error
			if err := json.Unmarshal(r.raw, &eb); err != nil || eb.Error.Status != r.status || eb.Error.Message == "" {
				t.Fatalf("%s %q: not a JSON error: %s", p, body, r.raw)
			}
		}
		q := e.internal("GET", fmt.Sprintf("%s?cursor=%s&epoch=%s&limit=%s", protocol.PathSync,
			url.QueryEscape(path), url.QueryEscape(body), url.QueryEscape(path)), nil)
		if q.status >= 500 {
			t.Fatalf("sync query: status %d", q.status)
		}
	})
}

func TestActivityBuffered(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ActivityFlushInterval = time.Hour; c.ActivityMaxPending = 3 })
	_, id := e.signIn("buf", "s-buf")
	base := e.clock.Now()
	e.clock.Add(time.Hour)
	r := e.internal("POST", protocol.PathActivity, []protocol.Activity{
		{Key: "sid:s-buf", At: base.Add(time.Minute).UnixMilli()},
		{Key: "sid:s-buf", At: base.Add(30 * time.Second).UnixMilli()},
	})
	require.Equal(t, 200, r.status)
	assert.Equal(t, float64(1), r.body["updated"], "one key moved in the buffer")
	s, err := e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(base), "not written before a flush")

	require.NoError(t, e.srv.FlushActivity(t.Context()))
	s, err = e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(base.Add(time.Minute)))

	// A full buffer flushes inside the request.
	r = e.internal("POST", protocol.PathActivity, []protocol.Activity{
		{Key: "sid:s-buf", At: base.Add(2 * time.Minute).UnixMilli()},
		{Key: "fp:x1", At: base.UnixMilli()}, {Key: "fp:x2", At: base.UnixMilli()},
	})
	require.Equal(t, 200, r.status)
	s, err = e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(base.Add(2*time.Minute)))

	// The flusher writes what is pending when its context ends.
	e.internal("POST", protocol.PathActivity, []protocol.Activity{{Key: "sid:s-buf", At: base.Add(3 * time.Minute).UnixMilli()}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { e.srv.RunActivityFlusher(ctx); close(done) }()
	cancel()
	<-done
	s, err = e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(base.Add(3*time.Minute)))

	// A failed flush keeps the marks for the next try.
	e.internal("POST", protocol.PathActivity, []protocol.Activity{{Key: "sid:s-buf", At: base.Add(4 * time.Minute).UnixMilli()}})
	dead, cancelDead := context.WithCancel(t.Context())
	cancelDead()
	assert.Error(t, e.srv.FlushActivity(dead))
	require.NoError(t, e.srv.FlushActivity(t.Context()))
	s, err = e.st.GetSession(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, s.LastActive.Equal(base.Add(4*time.Minute)))
}

// TestOpaqueRefreshTokenRevokedForItsLifetime: a login whose refresh token
// is opaque (no expiry the plugin can read) has that token, and the
// session's key, revoked for RevocationTTL when the session ends — not
// only until the access token expires, after which a refresh with the
// ended session's refresh token passed again.
func TestOpaqueRefreshTokenRevokedForItsLifetime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		e := newEnvWithStore(t, st)
		now := e.clock.Now()
		accessExp := now.Add(15 * time.Minute).Unix()
		r := e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "7", Keys: []string{"sid:op", "fp:access-op"},
			RefreshKeys: []string{"fp:opaque-rt"}, ExpiresAt: accessExp, IP: "203.0.113.7"})
		require.Equal(t, 200, r.status, string(r.raw))
		id := r.body["sessionId"].(string)
		require.Equal(t, 200, e.admin("POST", "/magic-sessionmanager/sessions/"+id+"/terminate", nil).status)

		epoch, err := st.Epoch(context.Background())
		require.NoError(t, err)
		exp := map[string]int64{}
		for _, c := range e.syncPage(epoch, 0, 0).Changes {
			exp[c.Key] = c.Exp
		}
		ttl := now.Add(e.srv.cfg.RevocationTTL).Unix()
		assert.GreaterOrEqual(t, exp["fp:opaque-rt"], ttl, "the opaque refresh token: kept for RevocationTTL")
		assert.GreaterOrEqual(t, exp["sid:op"], ttl, "the session key: as long as the refresh token")
		assert.Less(t, exp["fp:access-op"], ttl, "the access token: its own expiry (plus leeway)")
	})
}

// TestActivityBatchKeepsGoodMarks: a malformed mark (bad key, bad time) is
// dropped alone — the rest of the batch, other sessions' activity, is
// taken (a 400 for the whole batch left them to end as idle) — and a claim
// value with a space, which the plugin accepts, is a valid key.
func TestActivityBatchKeepsGoodMarks(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.signIn("u1", "with space")
	now := e.clock.Now().UnixMilli()
	r := e.internal("POST", protocol.PathActivity, []protocol.Activity{
		{Key: "sid:bad\u0001", At: now},
		{Key: "sid:with space", At: now, IP: "not an ip"},
		{Key: "sid:other", At: 0},
		{Key: "sid:x", At: 1 << 62},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.EqualValues(t, 1, r.body["accepted"], string(r.raw))
	assert.Equal(t, 200, e.user(tok, "GET", "/api/magic-sessionmanager/current-session", nil).status, "the session with a space in its claim is known")
}
