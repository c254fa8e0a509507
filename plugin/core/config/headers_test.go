package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/config"
)

func TestHeadersStopIteration(t *testing.T) {
	c, err := config.Parse([]byte(`{}`))
	require.NoError(t, err)
	assert.False(t, c.HeadersStopIteration, "off by default: works on every Envoy and Istio")

	c, err = config.Parse([]byte(`{"headers_stop_iteration": true}`))
	require.NoError(t, err)
	assert.True(t, c.HeadersStopIteration)

	_, err = config.Parse([]byte(`{"headers_stop_iteration": "yes"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"headers_stop_iteration"`)
}
