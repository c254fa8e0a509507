package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/settings"
)

func TestFromAppSettings(t *testing.T) {
	s := settings.Defaults(15 * time.Minute)
	p, err := FromAppSettings(s, Default())
	require.NoError(t, err)
	assert.Equal(t, 0, p.MinScore, "blockSuspiciousSessions is off by default")
	assert.Equal(t, 5, p.Lockout.MaxFailures)
	assert.Equal(t, 15, p.Lockout.LockMinutes)
	assert.Equal(t, Default().Score, p.Score)
	assert.False(t, p.DisableGeolocation)
	assert.ElementsMatch(t, Default().Alerts.Events, p.Alerts.Events)

	s.EnableGeofencing = true
	s.BlockedCountries = []string{"RU"}
	s.BlockVpn = true
	s.BlockSuspiciousSessions = true
	s.MinSecurityScore = 40
	s.MaxFailedLogins = 3
	s.LockoutMinutes = 60
	s.AlertOnVpnProxy = false
	s.EnableSecurityScoring = false
	s.EnableGeolocation = false
	base := Default()
	p, err = FromAppSettings(s, base)
	require.NoError(t, err)
	assert.Equal(t, []string{"RU"}, p.BlockedCountries)
	assert.True(t, p.BlockVPN)
	assert.True(t, p.BlockProxy)
	assert.Equal(t, 40, p.MinScore)
	assert.Equal(t, Lockout{MaxFailures: 3, WindowMinutes: 60, LockMinutes: 60, PerIP: true, PerUser: true,
		IPMaxFailures: 50, IPWindowMinutes: 15, IPLockMinutes: 15}, p.Lockout)
	assert.False(t, p.Alerts.Raises(alert.EventLoginVPN))
	assert.Zero(t, p.Score.Tor)
	assert.True(t, p.DisableGeolocation)
	assert.Equal(t, Default(), base, "base not modified")

	// Geofencing off: the country lists do not apply.
	s.EnableGeofencing = false
	p, err = FromAppSettings(s, Default())
	require.NoError(t, err)
	assert.Empty(t, p.BlockedCountries)

	// An invalid combination keeps the base policy and says why.
	s.EnableGeofencing = true
	s.AllowedCountries = []string{"RU"}
	p, err = FromAppSettings(s, Default())
	require.ErrorContains(t, err, "both list")
	assert.Equal(t, Default(), p)
}
