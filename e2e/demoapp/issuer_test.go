package demoapp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/e2e/demoapp"
)

// TestIssuer: with Config.Issuer the access tokens carry it as "iss" (an
// Istio RequestAuthentication accepts tokens by issuer); without, none.
func TestIssuer(t *testing.T) {
	for _, iss := range []string{"", "meshsession-demo"} {
		app := demoapp.New(demoapp.Config{Issuer: iss})
		c := claims(t, login(t, app, "alice").JWT)
		if iss == "" {
			assert.NotContains(t, c, "iss")
			continue
		}
		assert.Equal(t, iss, c["iss"])
	}
}
