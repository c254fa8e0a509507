package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/config"
)

func TestStartupHoldAndRevokingRoutes(t *testing.T) {
	def, err := config.Parse(nil)
	require.NoError(t, err)
	assert.Equal(t, time.Second, def.StartupHold)
	assert.Len(t, def.RevokingRoutes, 4)
	assert.Equal(t, config.DefaultPendingLogouts, def.PendingLogouts)

	ok := []struct {
		cfg  string
		hold time.Duration
		n    int
	}{
		{`{"startup_hold":"0s"}`, 0, 4},
		{`{"startup_hold":"2500ms"}`, 2500 * time.Millisecond, 4},
		{`{"startup_hold":"1m"}`, time.Minute, 4},
		{`{"revoking_routes":[]}`, time.Second, 0},
		{`{"revoking_routes":["POST /api/logout","DELETE /api/sessions/*"]}`, time.Second, 2},
	}
	for _, tc := range ok {
		c, err := config.Parse([]byte(tc.cfg))
		require.NoError(t, err, tc.cfg)
		assert.Equal(t, tc.hold, c.StartupHold, tc.cfg)
		assert.Len(t, c.RevokingRoutes, tc.n, tc.cfg)
	}
	bad := []struct{ cfg, field string }{
		{`{"startup_hold":"-1s"}`, "startup_hold"},
		{`{"startup_hold":"61s"}`, "startup_hold"},
		{`{"startup_hold":5}`, "startup_hold"},
		{`{"startup_hold":"soon"}`, "startup_hold"},
		{`{"revoking_routes":"POST /x"}`, "revoking_routes"},
		{`{"revoking_routes":["/x"]}`, "revoking_routes[0]"},
		{`{"revoking_routes":["post /x"]}`, "revoking_routes[0]"},
		{`{"revoking_routes":["POST x"]}`, "revoking_routes[0]"},
		{`{"revoking_routes":["POST /a/*/b"]}`, "revoking_routes[0]"},
		{`{"revoking_routes":["POST /*"]}`, "revoking_routes[0]"},
		{`{"revoking_routes":["POST /a?b"]}`, "revoking_routes[0]"},
		{`{"revoking_routes":["POST /ok","POST  /x"]}`, "revoking_routes[1]"},
		{`{"pending_logouts":0}`, "pending_logouts"},
		{`{"pending_logouts":65537}`, "pending_logouts"},
		{`{"pending_logouts":"9"}`, "pending_logouts"},
	}
	for _, tc := range bad {
		_, err := config.Parse([]byte(tc.cfg))
		require.Error(t, err, tc.cfg)
		assert.Contains(t, err.Error(), `"`+tc.field+`"`, tc.cfg)
	}
}
