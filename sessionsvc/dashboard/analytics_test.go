package dashboard

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

func TestAnalyticsRange(t *testing.T) {
	now := time.Date(2026, 3, 10, 14, 25, 0, 0, time.UTC)
	for _, tc := range []struct {
		q          string
		from, to   string
		bucketHour int
		err        bool
	}{
		{q: "", from: "2026-03-09T15:00:00Z", to: "2026-03-10T15:00:00Z", bucketHour: 1},
		{q: "range=24h", from: "2026-03-09T15:00:00Z", to: "2026-03-10T15:00:00Z", bucketHour: 1},
		{q: "range=7d", from: "2026-03-03T15:00:00Z", to: "2026-03-10T15:00:00Z", bucketHour: 6},
		{q: "range=30d", from: "2026-02-09T00:00:00Z", to: "2026-03-11T00:00:00Z", bucketHour: 24},
		{q: "range=custom&from=2026-03-01&to=2026-03-01", from: "2026-03-01T00:00:00Z", to: "2026-03-02T00:00:00Z", bucketHour: 1},
		{q: "range=custom&from=2026-01-01&to=2026-03-01", from: "2026-01-01T00:00:00Z", to: "2026-03-02T00:00:00Z", bucketHour: 24},
		{q: "range=custom&from=2026-03-01T10:00:00Z&to=2026-03-01T10:30:00Z", err: true},
		{q: "range=custom&from=2026-03-02&to=2026-03-01", err: true},
		{q: "range=custom&from=2020-01-01&to=2026-03-01", err: true},
		{q: "range=custom&from=yesterday&to=2026-03-01", err: true},
		{q: "range=1y", err: true},
		{q: "range=custom&from=9999-12-30&to=9999-12-31", err: true}, // its end rounded into year 10000: a 500
		{q: "range=custom&from=1900-01-01&to=1900-02-01", err: true},
	} {
		t.Run(tc.q, func(t *testing.T) {
			v, err := url.ParseQuery(tc.q)
			require.NoError(t, err)
			from, to, b, err := analyticsRange(v, now)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.from, from.Format(time.RFC3339))
			assert.Equal(t, tc.to, to.Format(time.RFC3339))
			assert.Equal(t, time.Duration(tc.bucketHour)*time.Hour, b)
			assert.LessOrEqual(t, int(to.Sub(from)/b), 62)
			assert.Zero(t, to.Sub(from)%b, "whole buckets")
		})
	}
}

func TestReasonCodes(t *testing.T) {
	for _, tc := range []struct {
		in     string
		code   string
		params map[string]string
	}{
		{"16 concurrent active sessions (more than 5)", "concurrent", map[string]string{"n": "16", "max": "5"}},
		{"new country FR (not in the last 10 sessions)", "newcountry", map[string]string{"country": "FR", "n": "10"}},
		{"new device Chrome/Windows", "newdevice", map[string]string{"device": "Chrome/Windows"}},
		{"impossible travel: 9012 km from Paris, FR in 1h5m0s", "travel", map[string]string{"km": "9012", "place": "Paris, FR", "time": "1h5m0s"}},
		{"impossible travel: 12 km from 1.00,2.00 in no time", "travel", map[string]string{"km": "12", "place": "1.00,2.00", "time": "no time"}},
		{"Tor exit node", "tor", nil},
		{"VPN network", "vpn", nil},
		{"proxy network", "proxy", nil},
		{"known threat ip", "threat", nil},
		{"hosting/datacenter network (anonymous)", "datacenter", nil},
		{"<b>not bold</b>", "", nil},
		{"16 concurrent active sessions (more than 5) and more", "", nil},
	} {
		t.Run(tc.in, func(t *testing.T) {
			rc := reasonCodeOf(tc.in)
			assert.Equal(t, tc.code, rc.Code)
			assert.Equal(t, tc.params, rc.Params)
			assert.Equal(t, tc.in, rc.Text)
		})
	}
}

func FuzzReasonCode(f *testing.F) {
	f.Add("16 concurrent active sessions (more than 5)")
	f.Add("new country FR (not in the last 10 sessions)")
	f.Fuzz(func(t *testing.T, s string) {
		rc := reasonCodeOf(s)
		if rc.Text != s {
			t.Fatalf("text changed")
		}
		for _, v := range rc.Params {
			if len(v) > len(s) {
				t.Fatalf("parameter longer than the input")
			}
		}
	})
}

func TestAnalyticsAndBulk(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		now := time.Now().UTC()
		a := e.seed(seedOpt{user: "alice", ip: "198.51.100.1", country: "France", cc: "FR", browser: "Chrome", device: "mobile", os: "Android",
			score: 30, reasons: []string{"16 concurrent active sessions (more than 5)"}, login: now.Add(-2 * time.Hour)})
		b := e.seed(seedOpt{user: "bob", ip: "198.51.100.2", country: "France", cc: "FR", browser: "Firefox", device: "desktop", os: "Linux", login: now.Add(-3 * time.Hour)})
		e.seed(seedOpt{user: "bob", ip: "198.51.100.2", country: "Brazil", cc: "BR", browser: "Firefox", device: "desktop", os: "Linux", login: now.Add(-5 * 24 * time.Hour)})
		_, err := e.st.EndSessions(context.Background(), store.EndFilter{SessionIDs: []string{b}}, "manual", true, now.Add(-time.Hour))
		require.NoError(t, err)
		// A wrong password, as the proxy reports it.
		e.internal(t, protocol.PathFailed, protocol.FailedLogin{IP: "203.0.113.9", Identifier: "carol", Status: 400})
		c := e.admin()

		d := c.data("/dashboard/api/analytics?range=24h")
		assert.EqualValues(t, 2, d["totalLogins"])
		assert.EqualValues(t, 2, d["uniqueUsers"])
		assert.EqualValues(t, 2, d["uniqueIps"])
		assert.EqualValues(t, 1, d["totalRefusals"])
		assert.Len(t, d["logins"], 24)
		active := d["active"].([]any)
		assert.EqualValues(t, 2, active[len(active)-1], "two open sessions now (alice, bob's older one)")
		assert.EqualValues(t, 1, active[len(active)-6], "5 hours ago only the 5-day-old one was open")
		assert.Equal(t, []any{map[string]any{"code": "FR", "name": "France", "count": 2.0}}, d["countries"])
		risky := d["risky"].([]any)
		require.Len(t, risky, 1)
		r0 := risky[0].(map[string]any)
		assert.Equal(t, a, r0["sessionId"])
		assert.Equal(t, "concurrent", r0["reasons"].([]any)[0].(map[string]any)["code"])
		by := map[string]float64{}
		for _, x := range d["refusalsByReason"].([]any) {
			by[x.(map[string]any)["name"].(string)] = x.(map[string]any)["count"].(float64)
		}
		assert.Equal(t, map[string]float64{"credentials": 1, "lockout": 0, "blocked": 0, "policy": 0}, by)

		week := c.data("/dashboard/api/analytics?range=7d")
		assert.EqualValues(t, 3, week["totalLogins"])
		assert.Len(t, week["countries"], 2)
		assert.Equal(t, 400, c.do("GET", "/dashboard/api/analytics?range=custom&from=x", nil, nil).status)

		// Bulk: terminate two sessions, one unknown; block two users.
		assert.Equal(t, 403, c.do("POST", "/dashboard/api/bulk", map[string]any{"action": "terminate", "sessionIds": []string{a}}, nil).status, "CSRF token required")
		bt := c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "terminate", "sessionIds": []string{a, "sess_missing", a}})
		require.Equal(t, 200, bt.status, string(bt.body))
		assert.EqualValues(t, 2, bt.json(t)["done"], "the admin API answers 200 for an unknown session, as upstream does")
		s, err := e.st.GetSession(context.Background(), a)
		require.NoError(t, err)
		assert.False(t, s.Active)
		bb := c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "block", "userIds": []string{"alice", "bob"}})
		require.Equal(t, 200, bb.status, string(bb.body))
		assert.EqualValues(t, 2, bb.json(t)["done"])
		for _, u := range []string{"alice", "bob"} {
			blocked, err := e.st.IsBlocked(context.Background(), u)
			require.NoError(t, err)
			assert.True(t, blocked, u)
		}
		assert.Equal(t, 400, c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "delete", "userIds": []string{"x"}}).status)
		assert.Equal(t, 400, c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "block"}).status)
	})
}
