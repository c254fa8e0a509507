package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/config"
)

func TestClaimsOptions(t *testing.T) {
	c, err := config.Parse([]byte(`{}`))
	require.NoError(t, err)
	assert.False(t, c.RequireExp)
	assert.Empty(t, c.Verify.Issuer)
	assert.Empty(t, c.Verify.Audiences)

	c, err = config.Parse([]byte(`{"require_exp":true,"verify":{"issuer":"https://idp.example","audiences":["api","admin"]}}`))
	require.NoError(t, err)
	assert.True(t, c.RequireExp)
	assert.Equal(t, "https://idp.example", c.Verify.Issuer)
	assert.Equal(t, []string{"api", "admin"}, c.Verify.Audiences)

	for in, want := range map[string]string{
		`{"require_exp":"yes"}`:                    `field "require_exp": must be true or false`,
		`{"verify":{"issuer":1}}`:                  `field "verify.issuer"`,
		`{"verify":{"issuer":"a\nb"}}`:             `field "verify.issuer": must not contain control characters`,
		`{"verify":{"audiences":"api"}}`:           `field "verify.audiences"`,
		`{"verify":{"audiences":[""]}}`:            `field "verify.audiences[0]": must be a non-empty string`,
		`{"verify":{"audiences":["a","b\u0000"]}}`: `field "verify.audiences[1]"`,
		`{"verify":{"audience":"api"}}`:            `verify.audience`, // unknown fields stay errors
		`{"verify":{"require_exp":true}}`:          `verify.require_exp`,
	} {
		_, err := config.Parse([]byte(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}
