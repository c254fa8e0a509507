package score

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

var (
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	london = &store.GeoLocation{CountryCode: "GB", City: "London", Latitude: 51.5142, Longitude: -0.0931}
	paris  = &store.GeoLocation{CountryCode: "FR", City: "Paris", Latitude: 48.8566, Longitude: 2.3522}
	sydney = &store.GeoLocation{CountryCode: "AU", City: "Sydney", Latitude: -33.8688, Longitude: 151.2093}
	camden = &store.GeoLocation{CountryCode: "GB", City: "Camden", Latitude: 51.55, Longitude: -0.16}
)

func sess(geo *store.GeoLocation, browser, os string, ago time.Duration) store.Session {
	return store.Session{Geo: geo, BrowserName: browser, OSName: os, LoginTime: t0.Add(-ago)}
}

func TestCompute(t *testing.T) {
	w := DefaultWeights()
	home := []store.Session{
		sess(london, "Chrome 130", "Windows 10", 2*time.Hour),
		sess(london, "Safari 17", "iOS 17.4", 30*time.Hour),
	}
	tests := []struct {
		name    string
		in      Input
		score   int
		risk    string
		reasons []string
		sig     Signals
	}{
		{"clean first login", Input{Geo: london, Browser: "Chrome 131", OS: "Windows 10", At: t0}, 100, RiskLow, nil, Signals{Concurrent: 1}},
		{"known device, browser updated, same country", Input{Geo: london, Browser: "Chrome 131", OS: "Windows 10", At: t0, History: home, ActiveSessions: 1}, 100, RiskLow, nil, Signals{Concurrent: 2}},
		{"tor", Input{Flags: reputation.Flags{Tor: true}, At: t0}, 50, RiskHigh, []string{"Tor exit node"}, Signals{Concurrent: 1}},
		{"everything on the lists", Input{Flags: reputation.Flags{Tor: true, Threat: true, VPN: true, Proxy: true, Datacenter: true}, At: t0}, 0, RiskCritical,
			[]string{"Tor exit node", "known threat ip", "VPN network", "proxy network", "hosting/datacenter network (anonymous)"}, Signals{Concurrent: 1}},
		{"vpn", Input{Flags: reputation.Flags{VPN: true}, At: t0}, 80, RiskLow, []string{"VPN network"}, Signals{Concurrent: 1}},
		{"vpn and proxy", Input{Flags: reputation.Flags{VPN: true, Proxy: true}, At: t0}, 65, RiskMedium, []string{"VPN network", "proxy network"}, Signals{Concurrent: 1}},
		{"new device", Input{Geo: london, Browser: "Firefox 133", OS: "Linux", At: t0, History: home}, 90, RiskLow, []string{"new device Firefox/Linux"}, Signals{NewDevice: true, Concurrent: 1}},
		{"new country, plausible travel", Input{Geo: paris, Browser: "Chrome 131", OS: "Windows 10", At: t0, History: home}, 85, RiskLow,
			[]string{"new country FR (not in the last 2 sessions)"}, Signals{NewCountry: true, Concurrent: 1}},
		{"impossible travel", Input{Geo: sydney, Browser: "Chrome 131", OS: "Windows 10", At: t0, History: home}, 55, RiskHigh,
			[]string{"new country AU (not in the last 2 sessions)", "impossible travel: 16991 km from London, GB in 2h0m0s"},
			Signals{NewCountry: true, ImpossibleTravel: true, TravelKm: 16991, TravelKmh: 8496, Concurrent: 1}},
		{"short hop is geoip noise", Input{Geo: camden, Browser: "Chrome 131", OS: "Windows 10", At: t0.Add(-2*time.Hour + time.Second), History: home}, 100, RiskLow, nil, Signals{Concurrent: 1}},
		{"too many sessions", Input{Geo: london, Browser: "Chrome 131", OS: "Windows 10", At: t0, History: home, ActiveSessions: 5}, 90, RiskLow,
			[]string{"6 concurrent active sessions (more than 5)"}, Signals{Concurrent: 6}},
		{"history without geo: no country signal", Input{Geo: paris, Browser: "Chrome 131", OS: "Windows 10", At: t0,
			History: []store.Session{sess(nil, "Chrome 120", "Windows 10", time.Hour)}}, 100, RiskLow, nil, Signals{Concurrent: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compute(w, tt.in)
			assert.Equal(t, tt.score, r.Score)
			assert.Equal(t, tt.risk, r.Risk)
			assert.Equal(t, tt.reasons, r.Reasons)
			assert.Equal(t, tt.sig, r.Signals)
		})
	}
}

func TestComputeSameInstantElsewhere(t *testing.T) {
	r := Compute(DefaultWeights(), Input{Geo: paris, At: t0, History: []store.Session{sess(london, "", "", 0)}})
	assert.True(t, r.Signals.ImpossibleTravel, "zero elapsed time and 340 km is impossible")
	assert.Zero(t, r.Signals.TravelKmh, "infinite speed is not reported as a number")
}

func TestWeightsAreConfigurable(t *testing.T) {
	w := DefaultWeights()
	w.Tor = 5
	w.NewDevice = 0
	w.MaxTravelKmh = 20000
	r := Compute(w, Input{Flags: reputation.Flags{Tor: true}, Geo: sydney, Browser: "Firefox 1", OS: "Linux", At: t0,
		History: []store.Session{sess(sydney, "Chrome 1", "Windows 10", time.Hour)}})
	assert.Equal(t, 95, r.Score)
	assert.Equal(t, []string{"Tor exit node"}, r.Reasons, "zero weight deducts nothing and gives no reason")
	assert.True(t, r.Signals.NewDevice, "the signal is still reported")
}

func TestRiskLevel(t *testing.T) {
	for score, want := range map[int]string{100: RiskLow, 80: RiskLow, 79: RiskMedium, 60: RiskMedium, 59: RiskHigh, 40: RiskHigh, 39: RiskCritical, 0: RiskCritical} {
		assert.Equal(t, want, RiskLevel(score), score)
	}
}

func TestHaversine(t *testing.T) {
	assert.InDelta(t, 343.5, Haversine(51.5074, -0.1278, 48.8566, 2.3522), 1, "London-Paris")
	assert.InDelta(t, 0, Haversine(10, 10, 10, 10), 1e-9)
	assert.InDelta(t, math.Pi*6371.0088, Haversine(0, 0, 0, 180), 1, "antipodes")
}

func TestDeviceKey(t *testing.T) {
	assert.Equal(t, "Chrome/Windows", DeviceKey("Chrome 131", "Windows 10"))
	assert.Equal(t, "Samsung Browser/Android", DeviceKey("Samsung Browser 25", "Android 14"))
	assert.Equal(t, "/Windows XP", DeviceKey("", "Windows XP"))
	assert.Equal(t, "", DeviceKey("", ""))
}

func TestValidate(t *testing.T) {
	require.NoError(t, DefaultWeights().Validate())
	for name, mut := range map[string]func(*Weights){
		"negative":    func(w *Weights) { w.VPN = -1 },
		"over 100":    func(w *Weights) { w.Tor = 101 },
		"speed":       func(w *Weights) { w.MaxTravelKmh = 0 },
		"nan":         func(w *Weights) { w.MinTravelKm = math.NaN() },
		"concurrency": func(w *Weights) { w.MaxConcurrentSessions = 0 },
		"history":     func(w *Weights) { w.HistorySize = 5000 },
	} {
		w := DefaultWeights()
		mut(&w)
		assert.Error(t, w.Validate(), name)
	}
}
