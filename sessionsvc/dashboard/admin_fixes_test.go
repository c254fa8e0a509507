package dashboard

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCleanInactiveKeepsSignInThrottle: the admin API's clean-inactive
// deletes ended sessions only; the dashboard's sign-in throttle
// (failed_logins "dashboard:<ip>") survives it.
func TestCleanInactiveKeepsSignInThrottle(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	for range maxLoginFailures {
		require.Equal(t, 401, c.login("wrong-token-wrong-token").status)
	}
	require.Equal(t, http.StatusTooManyRequests, c.login("wrong-token-wrong-token").status)
	a := c.do("POST", "/magic-sessionmanager/sessions/clean-inactive", nil, map[string]string{"Authorization": "Bearer " + testAdminToken})
	require.Equal(t, 200, a.status, string(a.body))
	assert.EqualValues(t, 0, a.json(t)["deletedCount"])
	assert.Equal(t, http.StatusTooManyRequests, c.login("wrong-token-wrong-token").status, "still throttled")
}
