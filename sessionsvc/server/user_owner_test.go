package server

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

// Issue 12 item 6: a token whose sid names another user's session never
// makes the user API act on that session's keys.
func TestUserAPINeverActsOnAnotherUsersSession(t *testing.T) {
	onBackends(t, testUserAPINeverActsOnAnotherUsersSession)
}

func testUserAPINeverActsOnAnotherUsersSession(t *testing.T, e *env) {
	epoch, err := e.st.Epoch(t.Context())
	require.NoError(t, err)
	bobTok := token(t, "bob", "b-1", nil)
	b1 := e.login("bob", bobTok, "")
	// Mallory's own sessions, and a token of hers whose sid is Bob's.
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

	r := e.user(forged, "DELETE", u+"/my-sessions/"+b1, nil)
	assert.Equal(t, 403, r.status, "another user's session: 403, as the Strapi plugin (issue 16)")
	bobActive("DELETE my-sessions")

	r = e.user(forged, "POST", u+"/logout-others", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	bobActive("logout-others")
	ms, err := e.st.GetSession(t.Context(), m1)
	require.NoError(t, err)
	assert.False(t, ms.Active, "logout-others ends the caller's own other sessions")

	r = e.user(forged, "POST", u+"/logout", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	bobActive("logout")
	// The forged token itself is revoked (by its fingerprint) all the same.
	fp := userauth.KeysFor(forged, "")[0]
	revoked := false
	for _, c := range e.syncPage(epoch, 0, 0).Changes {
		revoked = revoked || c.Op == protocol.OpRevoke && c.Key == fp
	}
	assert.True(t, revoked, "the caller's own token is revoked")

	forged2 := token(t, "mallory", "b-1", map[string]any{"jti": "x"})
	r = e.user(forged2, "POST", u+"/logout-all", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	bobActive("logout-all")
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
