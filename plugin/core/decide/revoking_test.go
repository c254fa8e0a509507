package decide_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/decide"
)

func TestRevokingRoutesMatch(t *testing.T) {
	rs, err := decide.NewRevokingRoutes(config.DefaultRevokingRoutes())
	require.NoError(t, err)
	const u = "/api/magic-sessionmanager"
	cases := []struct {
		method, path string
		want         bool
	}{
		{"POST", u + "/logout", true},
		{"POST", u + "/logout?x=1", true},
		{"POST", u + "/logout-all", true},
		{"POST", u + "/logout-others", true},
		{"DELETE", u + "/my-sessions/abc", true},
		{"GET", u + "/logout", false},
		{"POST", u + "/logout/", false},
		{"POST", u + "/logoutx", false},
		{"DELETE", u + "/my-sessions", false},
		{"DELETE", u + "/my-sessions/", false},
		{"DELETE", u + "/my-sessions/a/b", false},
		{"GET", u + "/my-sessions/abc", false},
		{"POST", "/api/auth/logout", false},
		// sessionsvc's ServeMux decodes unreserved characters: so does the match.
		{"POST", u + "/logout-%61ll", true},
		{"POST", u + "/%6cogout", true},
		{"DELETE", u + "/my-%73essions/victim", true},
		{"DELETE", u + "/my-sessions/a%2Fb", true},
		{"POST", u + "/%4Cogout", false}, // "L": the mux is case-sensitive
		{"POST", u + "/logout%2F", false},
		{"POST", u + "/logout%", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, rs.Match(tc.method, tc.path), "%s %s", tc.method, tc.path)
	}
	assert.False(t, decide.RevokingRoutes(nil).Match("POST", u+"/logout"))
	assert.Zero(t, testing.AllocsPerRun(100, func() { rs.Match("POST", u+"/logout-%61ll") }))
}
