package sessionview_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// reflected has Session's fields and tags but none of its methods:
// json.Marshal of it is what the API answered before AppendJSON.
type reflected sessionview.Session

func encodeCases() map[string]sessionview.Session {
	now := time.Date(2026, 12, 3, 14, 5, 6, 123456789, time.UTC)
	logout := now.Add(-time.Minute)
	exp := now.Add(time.Hour).Truncate(time.Second)
	str := func(s string) *string { return &s }
	f := func(v float64) *float64 { return &v }
	score, yes, no := 73, true, false
	full := sessionview.Of(&store.Session{
		ID: "sess_1", UserID: "42", IP: "203.0.113.9", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) <script>&</script>",
		LoginTime: now.Add(-time.Hour), LastActive: now.Add(-20 * time.Minute), LogoutTime: &logout,
		TerminationReason: "manual", TerminatedManually: true, DeviceType: "desktop", BrowserName: "Firefox 133", OSName: "Linux",
		Geo:           &store.GeoLocation{Country: "Deutschland ü", CountryCode: "DE", City: "Köln", Region: "NRW", Timezone: "Europe/Berlin", Latitude: 50.9375, Longitude: 6.9603},
		SecurityScore: 73, ScoreReasons: []string{"new device", "vpn \"maybe\""}, ExpiresAt: exp, Route: "/api/auth/local",
	}, sessionview.Options{Now: now, Inactivity: 15 * time.Minute, Scoring: true, Current: true, CurrentID: "sess_1",
		AppIDs: map[string]string{"sess_1": "sid-9"}})
	bare := sessionview.Of(&store.Session{ID: "sess_2", UserID: "u-7", LoginTime: now}, sessionview.Options{Now: now})
	return map[string]sessionview.Session{
		"full":                               full,
		"bare: nulls, geo missing, no score": bare,
		"zero value":                         {},
		"unicode and escapes": {ID: "sess_ü", UserID: "ユーザー", UserAgent: "tab\tnl\ncr\rbs\\q\"bell\x07bk\bff\f\x1f",
			IPAddress: "bad utf8 \xff\xfe end", BrowserName: "line\u2028para\u2029 emoji 🇩🇪 nbsp\u00a0",
			User:              sessionview.User{ID: sessionview.UserIDJSON("a<b>&c\"d"), Email: str("ä@example.com"), Username: str(""), DocumentID: str("<doc>")},
			TerminationReason: str("logout"), ScoreReasons: []string{}, Route: "/a?b=1&c=<2>"},
		"geo with nulls and odd floats": {ID: "sess_3", User: sessionview.User{ID: sessionview.UserIDJSON("0")},
			GeoLocation: &sessionview.Geo{Country: str("X"), Latitude: f(1e-7), Longitude: f(-1e21)}, SecurityScore: &score},
		"small and large floats":     {GeoLocation: &sessionview.Geo{Latitude: f(0.000001), Longitude: f(123456789012345678901.0)}},
		"negative zero and integers": {GeoLocation: &sessionview.Geo{Latitude: f(math.Copysign(0, -1)), Longitude: f(-180)}},
		"current false, discovered":  {ID: "sess_4", IsCurrentSession: &no, Discovered: true, IsTrulyActive: true, MinutesSinceActive: 12345},
		"current true":               {IsCurrentSession: &yes},
		"zoned times": {LoginTime: time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", -(5*3600+30*60))),
			LastActive: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		"year past 9999 (refused by json.Marshal)": {LoginTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"non-numeric raw user id":                  {User: sessionview.User{ID: json.RawMessage(`"x\u003c"`)}},
	}
}

func TestAppendJSONMatchesReflection(t *testing.T) {
	var list []sessionview.Session
	for name, v := range encodeCases() {
		want, wantErr := json.Marshal((*reflected)(&v))
		got, err := sessionview.AppendJSON([]byte("prefix"), &v)
		if wantErr != nil {
			assert.Error(t, err, name)
			continue
		}
		require.NoError(t, err, name)
		assert.Equal(t, "prefix"+string(want), string(got), name)
		list = append(list, v)
	}
	// A list, as the admin lists answer it.
	plain := make([]reflected, len(list))
	for i := range list {
		plain[i] = reflected(list[i])
	}
	want, err := json.Marshal(plain)
	require.NoError(t, err)
	got, err := sessionview.AppendListJSON(nil, list)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	got, err = sessionview.AppendListJSON(nil, []sessionview.Session{})
	require.NoError(t, err)
	assert.Equal(t, "[]", string(got))
}

func TestAppendJSONRefusesNaN(t *testing.T) {
	nan := math.NaN()
	v := sessionview.Session{GeoLocation: &sessionview.Geo{Latitude: &nan}}
	_, err := sessionview.AppendJSON(nil, &v)
	assert.Error(t, err, "json.Marshal refuses NaN; so does AppendJSON")
}

// BenchmarkListJSON: a page of 1,000 sessions (the export's) encoded by
// reflection (json.Marshal, as before) and by AppendListJSON.
func BenchmarkListJSON(b *testing.B) {
	full := encodeCases()["full"]
	list := make([]sessionview.Session, 1000)
	plain := make([]reflected, len(list))
	for i := range list {
		list[i], plain[i] = full, reflected(full)
	}
	b.Run("reflection", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			if _, err := sessionview.AppendListJSON(make([]byte, 0, 1200*len(list)), list); err != nil {
				b.Fatal(err)
			}
		}
	})
}
