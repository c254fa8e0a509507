package sessionview_test

import (
	"encoding/json"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestUserIDJSON(t *testing.T) {
	for id, want := range map[string]string{
		"7": `7`, "0": `0`, "123456789012345": `123456789012345`, "1234567890123456": `"1234567890123456"`,
		"007": `"007"`, "-1": `"-1"`, "u-7": `"u-7"`, "": `""`, `a"b`: `"a\"b"`, "1e3": `"1e3"`,
	} {
		assert.Equal(t, want, string(sessionview.UserIDJSON(id)), id)
	}
}

func TestFlag(t *testing.T) {
	assert.Equal(t, "🇩🇪", sessionview.Flag("DE"))
	assert.Equal(t, "🇩🇪", sessionview.Flag("de"))
	for _, bad := range []string{"", "D", "DEU", "1A", "Ä1"} {
		assert.Equal(t, "", sessionview.Flag(bad), bad)
	}
}

func TestOf(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	logout := now.Add(-time.Minute)
	ss := store.Session{ID: "sess_1", UserID: "7", LoginTime: now.Add(-time.Hour), LastActive: now.Add(-20 * time.Minute),
		LogoutTime: &logout, TerminationReason: "manual", SecurityScore: 80,
		Geo: &store.GeoLocation{Country: "Germany", CountryCode: "DE"}}
	v := sessionview.Of(&ss, sessionview.Options{Now: now, Inactivity: 15 * time.Minute, AppIDs: map[string]string{"sess_1": "sid-9"}})
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "sess_1", m["id"])
	assert.Equal(t, "sess_1", m["documentId"])
	assert.Equal(t, "sid-9", m["sessionId"])
	assert.Nil(t, m["securityScore"], "scoring off: null")
	assert.NotContains(t, m, "isCurrentSession", "only the user API marks it")
	assert.Equal(t, "manual", m["terminationReason"])
	assert.Equal(t, logout.Format(sessionview.TimeLayout), m["updatedAt"], "updatedAt: the end")
	assert.Equal(t, ss.LoginTime.Format(sessionview.TimeLayout), m["createdAt"])
	assert.Equal(t, float64(20), m["minutesSinceActive"])
	g := m["geoLocation"].(map[string]any)
	for _, k := range []string{"country", "country_code", "country_flag", "city", "region", "timezone"} {
		assert.Contains(t, g, k)
	}
	assert.Equal(t, "🇩🇪", g["country_flag"])
	assert.Nil(t, g["city"])
	u := m["user"].(map[string]any)
	assert.Equal(t, float64(7), u["id"])
	assert.Nil(t, u["email"])

	ss.Geo = &store.GeoLocation{}
	v = sessionview.Of(&ss, sessionview.Options{Now: now, Scoring: true, Current: true, CurrentID: "sess_1"})
	assert.Nil(t, v.GeoLocation, "an empty location is null")
	require.NotNil(t, v.SecurityScore)
	assert.Equal(t, 80, *v.SecurityScore)
	assert.True(t, *v.IsCurrentSession)
	assert.Equal(t, "sess_1", v.SessionID, "no app id known: the documentId")
}

func TestResolve(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx := t.Context()
	now := time.Now().UTC()
	a := &store.Session{UserID: "7", LoginTime: now}
	require.NoError(t, st.CreateSession(ctx, a, []store.SessionKey{{Key: "sid:abc", Kind: store.KeySession}, {Key: "fp:xyz", Kind: store.KeyAccess}}, nil))
	b := &store.Session{UserID: "8", LoginTime: now}
	require.NoError(t, st.CreateSession(ctx, b, []store.SessionKey{{Key: "fp:only", Kind: store.KeyAccess}}, nil))
	for id, want := range map[string]string{a.ID: a.ID, "abc": a.ID, "sid:abc": a.ID, "fp:xyz": a.ID, "fp:only": b.ID} {
		ss, err := sessionview.Resolve(ctx, st, id)
		require.NoError(t, err, id)
		assert.Equal(t, want, ss.ID, id)
	}
	for _, id := range []string{"sess_nope", "nope", "fp:nope"} {
		_, err := sessionview.Resolve(ctx, st, id)
		assert.ErrorIs(t, err, store.ErrNotFound, id)
	}
	for _, id := range []string{"", "a b", "x\x00", string(make([]byte, 600))} {
		_, err := sessionview.Resolve(ctx, st, id)
		assert.ErrorIs(t, err, store.ErrInvalid, "%q", id)
	}
	ids, err := sessionview.AppIDs(ctx, st, []store.Session{*a, *b})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{a.ID: "abc", b.ID: "fp:only"}, ids)
}

// reflected has Session's fields and tags but none of its methods:
// json.Marshal of it is what the API answered before AppendJSON, with its
// times rewritten by msTimes.
type reflected sessionview.Session

// rfc3339 matches the times json.Marshal writes (RFC 3339, nanoseconds).
var rfc3339 = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)

// msTimes rewrites each RFC 3339 time in b as the API writes times
// (sessionview.TimeLayout, in UTC).
func msTimes(t *testing.T, b []byte) string {
	return rfc3339.ReplaceAllStringFunc(string(b), func(q string) string {
		tm, err := time.Parse(time.RFC3339Nano, q[1:len(q)-1])
		require.NoError(t, err)
		return `"` + tm.UTC().Format(sessionview.TimeLayout) + `"`
	})
}

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
		assert.Equal(t, "prefix"+msTimes(t, want), string(got), name)
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
	assert.Equal(t, msTimes(t, want), string(got))
	viaMarshal, err := json.Marshal(list)
	require.NoError(t, err)
	assert.Equal(t, string(got), string(viaMarshal), "json.Marshal of sessions writes them as AppendJSON does")
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
