package server

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
