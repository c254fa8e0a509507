package sessionview_test

import (
	"encoding/json"
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
	assert.Equal(t, logout.Format(time.RFC3339), m["updatedAt"], "updatedAt: the end")
	assert.Equal(t, ss.LoginTime.Format(time.RFC3339), m["createdAt"])
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
