package envoyconfig_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/demoapp"
	"github.com/meshsession/meshsession/e2e/envoyconfig"
	pluginconfig "github.com/meshsession/meshsession/plugin/core/config"
)

// TestRepoPluginConfiguration: the plugin configuration embedded in
// envoy.yaml is accepted by the plugin's own parser (unknown fields and bad
// values are errors there) and agrees with the demo app and the clusters.
func TestRepoPluginConfiguration(t *testing.T) {
	c, err := envoyconfig.Load(repoEnvoyYAML)
	require.NoError(t, err)
	pc, err := pluginconfig.Parse([]byte(c.Wasm.Configuration))
	require.NoError(t, err)
	assert.Empty(t, pc.Warnings)

	assert.Equal(t, c.Wasm.PluginCluster, pc.Cluster)
	assert.Contains(t, c.Clusters, pc.Cluster)
	assert.Equal(t, pluginconfig.ModeHS256, pc.Verify.Mode)
	assert.Equal(t, demoapp.DefaultSecret, pc.Verify.Secret, "the plugin verifies what the demo app signs")
	assert.NotEmpty(t, pc.InternalKey)
	assert.Equal(t, 500*time.Millisecond, pc.SyncInterval)
	assert.Equal(t, 30*time.Second, pc.LastSeenInterval)

	// The routes the plugin observes are served by the app, not sessionsvc.
	for _, p := range []string{pc.Login.Path, pc.Refresh.Path, pc.Logout.Path} {
		r, ok := c.Route(p)
		require.True(t, ok, p)
		assert.Equal(t, "app", r.Cluster, p)
	}
}
