package policy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/alert"
)

func TestDefaultIsValid(t *testing.T) {
	p := Default()
	require.NoError(t, p.Validate())
	assert.False(t, p.Alerts.Raises(alert.EventLoginSuccess))
	assert.True(t, p.Alerts.Raises(alert.EventLoginThreat))
	assert.True(t, p.Lockout.Enabled())
}

func TestParseKeepsDefaultsAndNormalizes(t *testing.T) {
	p, err := Parse([]byte(`{"blockedCountries":["ru"," kp ","RU"],"blockTor":true,"score":{"tor":70},"lockout":{"maxFailures":3}}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"RU", "KP"}, p.BlockedCountries)
	assert.True(t, p.BlockTor)
	assert.Equal(t, 70, p.Score.Tor)
	assert.Equal(t, 40, p.Score.Threat, "unset weights keep their default")
	assert.Equal(t, 3, p.Lockout.MaxFailures)
	assert.Equal(t, 15, p.Lockout.WindowMinutes)
	assert.Equal(t, Default().Alerts, p.Alerts)

	for _, doc := range []string{"", "null", "  "} {
		p, err := Parse([]byte(doc))
		require.NoError(t, err)
		assert.Equal(t, Default(), p)
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		`{"blockedCountry":["RU"]}`:                             "unknown field",
		`{"blockedCountries":["Russia"]}`:                       "blockedCountries",
		`{"allowedCountries":["DE"],"blockedCountries":["de"]}`: "both list",
		`{"minScore":101}`:                                      "minScore",
		`{"lockout":{"maxFailures":5,"windowMinutes":0}}`:       "lockout.windowMinutes",
		`{"score":{"vpn":-5}}`:                                  "score.vpn",
		`{"score":{"maxTravelKmh":0}}`:                          "score.maxTravelKmh",
		`{"alerts":{"events":["login.party"]}}`:                 "alerts.events",
		`{"alerts":{"terminatedReasons":["bored"]}}`:            "alerts.terminatedReasons",
		`{"minScore":"high"}`:                                   "minScore",
		`[1,2]`:                                                 "cannot unmarshal",
		`{"minScore":1} {}`:                                     "trailing",
	}
	for doc, want := range tests {
		_, err := Parse([]byte(doc))
		require.Error(t, err, doc)
		assert.Contains(t, err.Error(), want, doc)
	}
}

func TestLockoutOffNeedsNoWindow(t *testing.T) {
	_, err := Parse([]byte(`{"lockout":{"maxFailures":0,"windowMinutes":0,"lockMinutes":0}}`))
	assert.NoError(t, err)
}

func TestFromSettings(t *testing.T) {
	p, err := FromSettings(json.RawMessage(`{"inactivityTimeout":15,"security":{"blockVpn":true}}`))
	require.NoError(t, err)
	assert.True(t, p.BlockVPN)

	p, err = FromSettings(nil)
	require.NoError(t, err)
	assert.Equal(t, Default(), p)

	p, err = FromSettings(json.RawMessage(`{"inactivityTimeout":15}`))
	require.NoError(t, err)
	assert.Equal(t, Default(), p)

	_, err = FromSettings(json.RawMessage(`{"security":{"minScore":-1}}`))
	assert.ErrorContains(t, err, "minScore")
}

func TestHolder(t *testing.T) {
	h := NewHolder(nil)
	assert.Equal(t, Default(), h.Get())
	p := Default()
	p.MinScore = 50
	p.BlockedCountries = []string{"ru"}
	require.NoError(t, h.Set(p))
	assert.Equal(t, 50, h.Get().MinScore)
	assert.Equal(t, []string{"RU"}, h.Get().BlockedCountries)
	p.MinScore = 500
	assert.Error(t, h.Set(p))
	assert.Equal(t, 50, h.Get().MinScore, "an invalid policy is not applied")
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	b, err := json.Marshal(Default())
	require.NoError(t, err)
	p, err := Parse(b)
	require.NoError(t, err)
	assert.Equal(t, Default(), p)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"blockedCountries":["ru"],"score":{"tor":70},"lockout":{"maxFailures":3}}`))
	f.Add([]byte(`{"alerts":{"events":["login.vpn"],"suspiciousBelow":50}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			return
		}
		// Whatever parses is valid and survives a round trip.
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse returned an invalid policy: %v", err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestParseOver(t *testing.T) {
	base := Default()
	base.BlockedCountries = []string{"RU"}
	base.MinScore = 30
	p, err := ParseOver(base, []byte(`{"blockedCountries":["KP"],"blockTor":true}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"KP"}, p.BlockedCountries)
	assert.Equal(t, 30, p.MinScore, "kept from base")
	assert.True(t, p.BlockTor)
	assert.Equal(t, []string{"RU"}, base.BlockedCountries, "base untouched")

	sec, err := SecurityDocument(json.RawMessage(`{"security":{"minScore":10},"x":1}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"minScore":10}`, string(sec))
	sec, err = SecurityDocument(nil)
	require.NoError(t, err)
	assert.Nil(t, sec)
	_, err = SecurityDocument(json.RawMessage(`[`))
	assert.Error(t, err)
}
