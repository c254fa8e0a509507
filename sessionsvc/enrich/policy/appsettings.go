package policy

import (
	"fmt"

	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/enrich/score"
	"github.com/meshsession/meshsession/sessionsvc/settings"
)

// FromAppSettings builds the policy from sessionsvc's admin settings (the
// Strapi-compatible flat fields), starting from base (Default() or a
// policy parsed from a "security" document):
//
//   - enableGeofencing: allowedCountries and blockedCountries apply
//   - blockTor, blockDatacenter; blockVpn blocks VPN and proxy networks
//   - blockSuspiciousSessions: minScore = minSecurityScore
//   - maxFailedLogins, lockoutMinutes: identifier lockout (window = lock duration)
//   - ipMaxFailedLogins, ipLockoutMinutes: address lockout (window = lock duration)
//   - progressiveLockout: doubling delays instead of one lock
//   - enableSecurityScoring false: every weight 0 (score 100)
//   - enableGeolocation false: no geolocation
//   - alertOnSuspiciousLogin, alertOnNewLocation, alertOnVpnProxy: those alerts
//
// The result is validated; on error base is returned with the error.
func FromAppSettings(s settings.Settings, base Policy) (Policy, error) {
	p := base.clone()
	if s.EnableGeofencing {
		p.AllowedCountries = append(p.AllowedCountries, s.AllowedCountries...)
		p.BlockedCountries = append(p.BlockedCountries, s.BlockedCountries...)
	}
	p.BlockTor = p.BlockTor || s.BlockTor
	p.BlockVPN = p.BlockVPN || s.BlockVpn
	p.BlockProxy = p.BlockProxy || s.BlockVpn
	p.BlockDatacenter = p.BlockDatacenter || s.BlockDatacenter
	if s.BlockSuspiciousSessions {
		p.MinScore = s.MinSecurityScore
	}
	p.Lockout.MaxFailures = s.MaxFailedLogins
	if s.LockoutMinutes > 0 {
		p.Lockout.LockMinutes = s.LockoutMinutes
		p.Lockout.WindowMinutes = s.LockoutMinutes
	}
	p.Lockout.Progressive = p.Lockout.Progressive || s.ProgressiveLockout
	p.Lockout.IPMaxFailures = s.IPMaxFailedLogins
	if s.IPLockoutMinutes > 0 {
		p.Lockout.IPLockMinutes = s.IPLockoutMinutes
		p.Lockout.IPWindowMinutes = s.IPLockoutMinutes
	}
	if !s.EnableSecurityScoring {
		w := score.DefaultWeights()
		p.Score = score.Weights{
			MaxTravelKmh: w.MaxTravelKmh, MinTravelKm: w.MinTravelKm,
			MaxConcurrentSessions: w.MaxConcurrentSessions, HistorySize: w.HistorySize,
		}
	}
	p.DisableGeolocation = p.DisableGeolocation || !s.EnableGeolocation
	set := func(on bool, e string) {
		if on {
			if !p.Alerts.Raises(e) {
				p.Alerts.Events = append(p.Alerts.Events, e)
			}
			return
		}
		out := p.Alerts.Events[:0:0]
		for _, x := range p.Alerts.Events {
			if x != e {
				out = append(out, x)
			}
		}
		p.Alerts.Events = out
	}
	set(s.AlertOnSuspiciousLogin, alert.EventLoginSuspicious)
	set(s.AlertOnNewLocation, alert.EventLoginNewLocation)
	set(s.AlertOnVpnProxy, alert.EventLoginVPN)
	p.Normalize()
	if err := p.Validate(); err != nil {
		return base, fmt.Errorf("security settings: %w", err)
	}
	return p, nil
}
