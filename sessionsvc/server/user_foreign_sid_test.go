package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

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
