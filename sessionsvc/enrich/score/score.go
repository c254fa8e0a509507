// Package score computes a login's security score (0-100, higher is safer)
// and the reasons points were deducted, from the ip's reputation and the
// user's recent sessions.
package score

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Weights are the points deducted per signal and the thresholds of the
// history signals. JSON tags are the admin settings' spelling.
type Weights struct {
	Tor                int `json:"tor"`
	Threat             int `json:"threat"`
	VPN                int `json:"vpn"`
	Proxy              int `json:"proxy"`
	Anonymous          int `json:"anonymous"` // hosting/datacenter networks (the datacenter list)
	NewCountry         int `json:"newCountry"`
	NewDevice          int `json:"newDevice"`
	ImpossibleTravel   int `json:"impossibleTravel"`
	ConcurrentSessions int `json:"concurrentSessions"`

	// MaxTravelKmh: a speed above this from the previous login's location is impossible travel.
	MaxTravelKmh float64 `json:"maxTravelKmh"`
	// MinTravelKm: distances below this are GeoIP noise, never impossible travel.
	MinTravelKm float64 `json:"minTravelKm"`
	// MaxConcurrentSessions: more active sessions than this (counting the new one) is unusual.
	MaxConcurrentSessions int `json:"maxConcurrentSessions"`
	// HistorySize: how many recent sessions are compared with the new one.
	HistorySize int `json:"historySize"`
}

// DefaultWeights are the seed's deductions plus the history signals.
func DefaultWeights() Weights {
	return Weights{
		Tor: 50, Threat: 40, VPN: 20, Proxy: 15, Anonymous: 10,
		NewCountry: 15, NewDevice: 10, ImpossibleTravel: 30, ConcurrentSessions: 10,
		MaxTravelKmh: 900, MinTravelKm: 100, MaxConcurrentSessions: 5, HistorySize: 50,
	}
}

// Validate checks every weight is within 0..100 and thresholds are sane.
func (w Weights) Validate() error {
	for name, v := range map[string]int{
		"tor": w.Tor, "threat": w.Threat, "vpn": w.VPN, "proxy": w.Proxy, "anonymous": w.Anonymous,
		"newCountry": w.NewCountry, "newDevice": w.NewDevice, "impossibleTravel": w.ImpossibleTravel,
		"concurrentSessions": w.ConcurrentSessions,
	} {
		if v < 0 || v > 100 {
			return fmt.Errorf("score.%s: %d is outside 0..100", name, v)
		}
	}
	if w.MaxTravelKmh <= 0 || math.IsNaN(w.MaxTravelKmh) || math.IsInf(w.MaxTravelKmh, 0) {
		return fmt.Errorf("score.maxTravelKmh: must be a positive number, got %v", w.MaxTravelKmh)
	}
	if w.MinTravelKm < 0 || math.IsNaN(w.MinTravelKm) || math.IsInf(w.MinTravelKm, 0) {
		return fmt.Errorf("score.minTravelKm: must be zero or positive, got %v", w.MinTravelKm)
	}
	if w.MaxConcurrentSessions < 1 {
		return fmt.Errorf("score.maxConcurrentSessions: must be at least 1, got %d", w.MaxConcurrentSessions)
	}
	if w.HistorySize < 1 || w.HistorySize > 1000 {
		return fmt.Errorf("score.historySize: must be within 1..1000, got %d", w.HistorySize)
	}
	return nil
}

// Input is what is known about a login.
type Input struct {
	Flags   reputation.Flags
	Geo     *store.GeoLocation // nil when unknown
	Browser string             // "Chrome 131"
	OS      string             // "Windows 10"
	At      time.Time
	// History: the user's most recent sessions, newest first (not including this login).
	History []store.Session
	// ActiveSessions: the user's active sessions, not counting this login.
	ActiveSessions int
}

// Signals are the history findings, for alerts.
type Signals struct {
	NewCountry       bool    `json:"newCountry,omitempty"`
	NewDevice        bool    `json:"newDevice,omitempty"`
	ImpossibleTravel bool    `json:"impossibleTravel,omitempty"`
	TravelKm         float64 `json:"travelKm,omitempty"`
	TravelKmh        float64 `json:"travelKmh,omitempty"`
	Concurrent       int     `json:"concurrent,omitempty"` // active sessions including this login
}

// Result is a scored login.
type Result struct {
	Score   int
	Reasons []string
	Risk    string
	Signals Signals
}

// Risk levels.
const (
	RiskLow      = "low"
	RiskMedium   = "medium"
	RiskHigh     = "high"
	RiskCritical = "critical"
)

// RiskLevel maps a score to a level: >= 80 low, >= 60 medium, >= 40 high, else critical.
func RiskLevel(score int) string {
	switch {
	case score >= 80:
		return RiskLow
	case score >= 60:
		return RiskMedium
	case score >= 40:
		return RiskHigh
	}
	return RiskCritical
}

// Compute scores a login. History signals need history: a user's first
// login is neither a new country nor a new device.
func Compute(w Weights, in Input) Result {
	r := Result{Score: 100}
	deduct := func(points int, reason string) {
		if points <= 0 {
			return
		}
		r.Score -= points
		r.Reasons = append(r.Reasons, reason)
	}
	if in.Flags.Tor {
		deduct(w.Tor, "Tor exit node")
	}
	if in.Flags.Threat {
		deduct(w.Threat, "known threat ip")
	}
	if in.Flags.VPN {
		deduct(w.VPN, "VPN network")
	}
	if in.Flags.Proxy {
		deduct(w.Proxy, "proxy network")
	}
	if in.Flags.Datacenter {
		deduct(w.Anonymous, "hosting/datacenter network (anonymous)")
	}

	if cc := countryCode(in.Geo); cc != "" {
		seen, known := false, false
		for i := range in.History {
			h := countryCode(in.History[i].Geo)
			if h == "" {
				continue
			}
			known = true
			if strings.EqualFold(h, cc) {
				seen = true
				break
			}
		}
		if known && !seen {
			r.Signals.NewCountry = true
			deduct(w.NewCountry, fmt.Sprintf("new country %s (not in the last %d sessions)", cc, len(in.History)))
		}
	}

	if dev := DeviceKey(in.Browser, in.OS); dev != "" && len(in.History) > 0 {
		seen := false
		for i := range in.History {
			if DeviceKey(in.History[i].BrowserName, in.History[i].OSName) == dev {
				seen = true
				break
			}
		}
		if !seen {
			r.Signals.NewDevice = true
			deduct(w.NewDevice, fmt.Sprintf("new device %s", dev))
		}
	}

	if prev := previousWithCoordinates(in.History); prev != nil && hasCoordinates(in.Geo) {
		km := Haversine(prev.Geo.Latitude, prev.Geo.Longitude, in.Geo.Latitude, in.Geo.Longitude)
		if km >= w.MinTravelKm && km > 0 {
			dt := in.At.Sub(prev.LoginTime)
			var kmh float64
			if dt <= 0 {
				kmh = math.Inf(1)
			} else {
				kmh = km / dt.Hours()
			}
			if kmh > w.MaxTravelKmh {
				r.Signals.ImpossibleTravel = true
				r.Signals.TravelKm = math.Round(km)
				if !math.IsInf(kmh, 0) {
					r.Signals.TravelKmh = math.Round(kmh)
				}
				deduct(w.ImpossibleTravel, fmt.Sprintf("impossible travel: %.0f km from %s in %s", km, place(prev.Geo), roundDur(dt)))
			}
		}
	}

	r.Signals.Concurrent = in.ActiveSessions + 1
	if r.Signals.Concurrent > w.MaxConcurrentSessions {
		deduct(w.ConcurrentSessions, fmt.Sprintf("%d concurrent active sessions (more than %d)", r.Signals.Concurrent, w.MaxConcurrentSessions))
	}

	r.Score = max(0, min(100, r.Score))
	r.Risk = RiskLevel(r.Score)
	return r
}

func countryCode(g *store.GeoLocation) string {
	if g == nil {
		return ""
	}
	return g.CountryCode
}

func hasCoordinates(g *store.GeoLocation) bool {
	return g != nil && (g.Latitude != 0 || g.Longitude != 0) &&
		!math.IsNaN(g.Latitude) && !math.IsNaN(g.Longitude)
}

func previousWithCoordinates(h []store.Session) *store.Session {
	for i := range h {
		if hasCoordinates(h[i].Geo) {
			return &h[i]
		}
	}
	return nil
}

func place(g *store.GeoLocation) string {
	switch {
	case g.City != "" && g.CountryCode != "":
		return g.City + ", " + g.CountryCode
	case g.CountryCode != "":
		return g.CountryCode
	}
	return fmt.Sprintf("%.2f,%.2f", g.Latitude, g.Longitude)
}

func roundDur(d time.Duration) string {
	if d <= 0 {
		return "no time"
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// DeviceKey names a device by browser and OS family, without versions (a
// browser update is not a new device): "Chrome/Windows".
func DeviceKey(browser, os string) string {
	b, o := family(browser), family(os)
	if b == "" && o == "" {
		return ""
	}
	return b + "/" + o
}

// family drops a trailing version: "Chrome 131" -> "Chrome", "iOS 17.4" -> "iOS".
func family(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		v := s[i+1:]
		if v != "" && (v[0] >= '0' && v[0] <= '9') {
			return s[:i]
		}
	}
	return s
}

// Haversine is the great-circle distance in km between two points in degrees.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const earthRadiusKm = 6371.0088
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
