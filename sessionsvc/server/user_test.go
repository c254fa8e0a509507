package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

const u = "/api/magic-sessionmanager"

func ids(r resp) []string {
	var out []string
	for _, d := range r.body["data"].([]any) {
		out = append(out, d.(map[string]any)["documentId"].(string))
	}
	return out
}

func TestUserSessionsAndAuthz(t *testing.T) { onBackends(t, testUserSessionsAndAuthz) }

func testUserSessionsAndAuthz(t *testing.T, e *env) {
	aliceTok, a1 := e.signIn("alice", "a-1")
	aliceOther, a2 := e.signIn("alice", "a-2")
	_, b1 := e.signIn("bob", "b-1")

	r := e.user(aliceTok, "GET", u+"/my-sessions", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.ElementsMatch(t, []string{a1, a2}, ids(r))
	meta := r.body["meta"].(map[string]any)
	assert.Equal(t, float64(2), meta["count"])
	assert.Equal(t, float64(2), meta["active"])
	for _, d := range r.body["data"].([]any) {
		s := d.(map[string]any)
		assert.Equal(t, s["documentId"] == a1, s["isCurrentSession"], "isCurrentSession marks the caller's session")
		assert.Equal(t, true, s["isTrulyActive"])
		assert.Equal(t, float64(0), s["minutesSinceActive"])
		assert.Equal(t, "alice", s["userId"])
		assert.Equal(t, "alice", s["user"].(map[string]any)["id"])
		assert.Equal(t, "203.0.113.7", s["ipAddress"])
		for _, f := range []string{"userAgent", "loginTime", "lastActive", "logoutTime", "isActive", "terminatedManually",
			"terminationReason", "deviceType", "browserName", "osName", "geoLocation", "securityScore", "scoreReasons"} {
			assert.Contains(t, s, f)
		}
		assert.Equal(t, float64(100), s["securityScore"], "no enricher: score 100")
	}

	r = e.user(aliceTok, "GET", u+"/current-session", nil)
	require.Equal(t, 200, r.status)
	cur := r.body["data"].(map[string]any)
	assert.Equal(t, a1, cur["documentId"])
	assert.Equal(t, "a-1", cur["sessionId"], "sessionId: the id the app sees (the sid claim)")
	assert.Equal(t, true, cur["isCurrentSession"])

	r = e.user(aliceTok, "GET", u+"/user/alice/sessions", nil)
	require.Equal(t, 200, r.status)
	assert.Len(t, ids(r), 2)
	r = e.user(aliceTok, "GET", u+"/user/bob/sessions", nil)
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "ForbiddenError", r.body["error"].(map[string]any)["name"])

	// Alice cannot end Bob's session (403, as upstream), nor her current one.
	r = e.user(aliceTok, "DELETE", u+"/my-sessions/"+b1, nil)
	assert.Equal(t, 403, r.status)
	bs, err := e.st.GetSession(t.Context(), b1)
	require.NoError(t, err)
	assert.True(t, bs.Active)
	r = e.user(aliceTok, "DELETE", u+"/my-sessions/"+a1, nil)
	assert.Equal(t, 400, r.status)
	assert.Contains(t, r.body["error"].(map[string]any)["message"], "current session")
	r = e.user(aliceTok, "DELETE", u+"/my-sessions/not-an-id", nil)
	assert.Equal(t, 404, r.status)
	r = e.user(aliceTok, "DELETE", u+"/my-sessions/"+a2, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	as, err := e.st.GetSession(t.Context(), a2)
	require.NoError(t, err)
	assert.False(t, as.Active)
	assert.Equal(t, protocol.ReasonManual, as.TerminationReason, "upstream's terminateOwnSession: reason manual")

	// The ended session's token is refused with its reason.
	r = e.user(aliceOther, "GET", u+"/my-sessions", nil)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, protocol.ReasonManual, r.header.Get("X-Session-Terminated-Reason"))
	assert.Equal(t, protocol.ReasonManual, r.body["error"].(map[string]any)["details"].(map[string]any)["reason"])

	// Status filter on my-sessions.
	r = e.user(aliceTok, "GET", u+"/my-sessions?status=terminated", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, []string{a2}, ids(r))
}

func TestUserLogoutVariants(t *testing.T) {
	e := newEnv(t)
	epoch, _ := e.st.Epoch(t.Context())
	t1, c1 := e.signIn("carol", "c-1")
	_, c2 := e.signIn("carol", "c-2")
	_, c3 := e.signIn("carol", "c-3")
	d1 := e.login("dave", token(t, "dave", "d-1", nil), "")

	r := e.user(t1, "POST", u+"/logout-others", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, float64(2), r.body["terminatedCount"])
	for id, active := range map[string]bool{c1: true, c2: false, c3: false, d1: true} {
		s, err := e.st.GetSession(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, active, s.Active, id)
	}

	r = e.user(t1, "POST", u+"/logout", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "Logged out successfully", r.body["message"])
	s, _ := e.st.GetSession(t.Context(), c1)
	assert.False(t, s.Active)
	assert.Equal(t, 401, e.user(t1, "GET", u+"/my-sessions", nil).status)

	// logout-all: sessions end and a not-before is published.
	t4, c4 := e.signIn("carol", "c-4")
	head := e.syncPage(epoch, 0, 0).Cursor
	r = e.user(t4, "POST", u+"/logout-all", nil)
	require.Equal(t, 200, r.status)
	s, _ = e.st.GetSession(t.Context(), c4)
	assert.False(t, s.Active)
	var nb *protocol.Change
	for _, c := range e.syncPage(epoch, head, 0).Changes {
		if c.Op == protocol.OpNotBefore {
			c := c
			nb = &c
		}
	}
	require.NotNil(t, nb, "logout-all publishes a not-before")
	assert.Equal(t, "carol", nb.User)
	assert.Equal(t, e.clock.Now().Unix(), nb.At)

	// Logging out a token sessionsvc never saw still revokes it.
	untracked := token(t, "erin", "", nil)
	r = e.user(untracked, "POST", u+"/logout", nil)
	require.Equal(t, 200, r.status)
	found := false
	for _, c := range e.syncPage(epoch, 0, 0).Changes {
		if strings.HasPrefix(c.Key, "fp:") && c.Reason == protocol.ReasonLogout {
			found = found || c.Exp > 0
		}
	}
	assert.True(t, found)
}

func TestUserAuthFailures(t *testing.T) {
	e := newEnv(t)
	e.login("zed", token(t, "zed", "z-1", nil), "")
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "zed", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "zed"}).SignedString([]byte("another-secret-0123456789"))
	require.NoError(t, err)
	cases := []struct {
		name, auth string
		status     int
		msg        string
	}{
		{"no header", "", 401, "missing bearer"},
		{"basic", "Basic abc", 401, "missing bearer"},
		{"garbage", "Bearer not.a.jwt", 401, "malformed"},
		{"alg none", "Bearer " + none, 401, "invalid token"},
		{"wrong key", "Bearer " + wrongKey, 401, "signature"},
		{"expired", "Bearer " + token(t, "zed", "z-1", jwt.MapClaims{"exp": time.Now().Add(-5 * time.Minute).Unix()}), 401, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			r := e.do("GET", u+"/my-sessions", nil, hdr)
			require.Equal(t, tc.status, r.status, string(r.raw))
			assert.Contains(t, r.body["error"].(map[string]any)["details"].(map[string]any)["cause"], tc.msg)
		})
	}

	// Blocked users get 401 with the reason (as upstream).
	require.NoError(t, e.st.SetBlocked(t.Context(), "zed", true, time.Now()))
	r := e.user(token(t, "zed", "", nil), "GET", u+"/my-sessions", nil)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, protocol.ReasonBlocked, r.header.Get("X-Session-Terminated-Reason"))

	// Without a verifier the user API says it is not configured.
	e2 := newEnv(t, func(c *Config) { c.Users = nil })
	r = e2.user(token(t, "zed", "", nil), "GET", u+"/my-sessions", nil)
	assert.Equal(t, 503, r.status)
	assert.Contains(t, r.body["error"].(map[string]any)["message"], "JWT_SECRET")
}

func TestAPIBodyLimit(t *testing.T) {
	e := newEnv(t)
	r := e.admin("PUT", "/magic-sessionmanager/settings", `{"emailTemplates":{"a":{"html":"`+strings.Repeat("a", 70<<10)+`"}}}`)
	assert.Equal(t, 413, r.status)
	assert.Equal(t, "PayloadTooLargeError", r.body["error"].(map[string]any)["name"])
}

// Issue 12 item 2 on the user API: two different Authorization headers are
// refused (which one would the proxy have checked?); the same one twice is not.
func TestUserAPIRefusesTwoAuthorizationHeaders(t *testing.T) {
	e := newEnv(t)
	a, b := token(t, "alice", "a-1", nil), token(t, "bob", "b-1", nil)
	e.login("alice", a, "")
	e.login("bob", b, "")
	call := func(vals ...string) int {
		req, err := http.NewRequest("GET", e.http.URL+u+"/my-sessions", nil)
		require.NoError(t, err)
		for _, v := range vals {
			req.Header.Add("Authorization", v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, 401, call("Bearer "+a, "Bearer "+b))
	assert.Equal(t, 401, call("Bearer "+a, "Basic eDp5"))
	assert.Equal(t, 200, call("Bearer "+a, "Bearer "+a))
	assert.Equal(t, 200, call("Bearer "+a))
}

// Issue 12 item 6: a token whose sid claim names another user's session, through the
// Strapi-shaped user routes: the other session is never touched (its key
// never revoked), the caller's own sessions are, and DELETE of the other
// user's session is 403 as upstream.
func TestForeignSidThroughStrapiRoutes(t *testing.T) {
	onBackends(t, testForeignSidThroughStrapiRoutes)
}

func testForeignSidThroughStrapiRoutes(t *testing.T, e *env) {
	epoch, err := e.st.Epoch(t.Context())
	require.NoError(t, err)
	bobTok := token(t, "bob", "b-1", nil)
	b1 := e.login("bob", bobTok, "")
	m1 := e.login("mallory", token(t, "mallory", "m-1", nil), "")
	forged := token(t, "mallory", "b-1", nil)

	bobActive := func(step string) {
		t.Helper()
		s, err := e.st.GetSession(t.Context(), b1)
		require.NoError(t, err)
		assert.True(t, s.Active, "%s: Bob's session ended", step)
		r := e.user(bobTok, "GET", u+"/current-session", nil)
		assert.Equal(t, 200, r.status, "%s: Bob's token refused: %s", step, r.raw)
		for _, c := range e.syncPage(epoch, 0, 0).Changes {
			assert.False(t, c.Op == protocol.OpRevoke && c.Key == "sid:b-1", "%s: Bob's sid key revoked", step)
		}
	}

	for _, id := range []string{b1, "b-1", "sid:b-1"} {
		r := e.user(forged, "DELETE", u+"/my-sessions/"+id, nil)
		assert.Equal(t, 403, r.status, id)
	}
	bobActive("DELETE my-sessions")

	r := e.user(forged, "POST", u+"/logout-others", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, true, r.body["fellBackToLogoutAll"], "the forged token names no session of the caller")
	bobActive("logout-others")
	ms, err := e.st.GetSession(t.Context(), m1)
	require.NoError(t, err)
	assert.False(t, ms.Active, "the caller's own sessions end")

	r = e.user(forged, "POST", u+"/logout", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, false, r.body["terminated"])
	bobActive("logout")
	fp := userauth.KeysFor(forged, "")[0]
	revoked := false
	for _, c := range e.syncPage(epoch, 0, 0).Changes {
		revoked = revoked || c.Op == protocol.OpRevoke && c.Key == fp
	}
	assert.True(t, revoked, "the caller's own token is revoked by its fingerprint")

	r = e.user(token(t, "mallory", "b-1", map[string]any{"jti": "x"}), "POST", u+"/logout-all", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	bobActive("logout-all")
}
