package dashboard

import (
	"context"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// lockFor locks an account name in the store, as failed logins would.
func lockFor(t *testing.T, e *testEnv, name string) {
	t.Helper()
	_, err := e.st.RecordLoginFailure(context.Background(), store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ident:" + name,
		Kind: store.CounterIdentifier, Subject: name, At: time.Now().UTC(), Threshold: 1, Window: 15 * time.Minute}, LockFor: 10 * time.Minute}, nil)
	require.NoError(t, err)
}

// TestAuditTrail: every admin action made from the dashboard is in the
// audit trail with the admin token's name, the address and what it
// acted on; the trail pages and exports; the session detail says who
// ended a session.
func TestAuditTrail(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		s1 := e.seed(seedOpt{user: "alice", ip: "198.51.100.1"})
		s2 := e.seed(seedOpt{user: "bob", ip: "198.51.100.2"})
		e.seed(seedOpt{user: "carol", ip: "198.51.100.3"})
		lockFor(t, e, "mallory")
		c := e.admin()

		require.Equal(t, 200, c.post("POST", "/dashboard/api/sessions/"+s1+"/terminate", nil).status)
		require.Equal(t, 200, c.post("POST", "/dashboard/api/users/bob/block", map[string]any{"blocked": true}).status)
		require.Equal(t, 200, c.post("POST", "/dashboard/api/users/bob/block", map[string]any{"blocked": false}).status)
		require.Equal(t, 200, c.post("POST", "/dashboard/api/users/carol/terminate-all", nil).status)
		require.Equal(t, 200, c.post("PUT", "/dashboard/api/settings", map[string]any{"inactivityTimeout": 20, "smtp": map[string]any{"password": "hunter2-secret"}}).status)
		require.Equal(t, 200, c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "terminate", "sessionIds": []string{s2}}).status)
		assert.Equal(t, 200, c.post("POST", "/dashboard/api/sessions/sess_missing/terminate", nil).status, "an unknown session: nothing done, nothing audited")

		// Lockouts: listed, unlocked.
		lo := c.do("GET", "/dashboard/api/lockouts", nil, nil)
		require.Equal(t, 200, lo.status, string(lo.body))
		list := lo.json(t)["data"].([]any)
		require.Len(t, list, 1)
		assert.Equal(t, "mallory", list[0].(map[string]any)["value"])
		assert.Equal(t, 403, c.do("POST", "/dashboard/api/lockouts/unlock", map[string]any{"type": "identifier", "value": "mallory"}, nil).status, "CSRF")
		require.Equal(t, 200, c.post("POST", "/dashboard/api/lockouts/unlock", map[string]any{"type": "identifier", "value": "mallory"}).status)
		assert.Empty(t, c.do("GET", "/dashboard/api/lockouts", nil, nil).json(t)["data"])

		au := c.do("GET", "/dashboard/api/audit?limit=50", nil, nil)
		require.Equal(t, 200, au.status, string(au.body))
		var got []string
		for _, x := range au.json(t)["data"].([]any) {
			ev := x.(map[string]any)
			got = append(got, ev["event"].(string)+" "+ev["subject"].(string))
			assert.Equal(t, "bootstrap (ADMIN_TOKEN)", ev["actor"], ev["event"])
			if ev["event"] != "lockout.unlocked" {
				det := ev["detail"].(map[string]any)
				assert.Equal(t, "127.0.0.1", det["ip"], ev["event"])
				assert.Equal(t, "dashboard", det["via"], ev["event"])
			}
		}
		assert.Equal(t, []string{"lockout.unlocked mallory", "session.terminated " + s2, "settings.changed ", "user.terminated_all carol",
			"user.unblocked bob", "user.blocked bob", "session.terminated " + s1}, got, "newest first")
		assert.NotContains(t, string(au.body), "hunter2", "settings values are not in the trail")
		assert.Contains(t, string(au.body), `inactivityTimeout,smtp`)

		// Paging: one at a time reaches the oldest.
		first := c.do("GET", "/dashboard/api/audit?limit=1", nil, nil).json(t)
		next := first["meta"].(map[string]any)["next"]
		require.NotNil(t, next)
		second := c.do("GET", "/dashboard/api/audit?limit=1&before="+strconvF(next.(float64)), nil, nil).json(t)
		assert.Equal(t, "session.terminated", second["data"].([]any)[0].(map[string]any)["event"])

		// Export.
		ex := c.do("GET", "/dashboard/api/audit/export?format=csv", nil, nil)
		require.Equal(t, 200, ex.status)
		rows, err := csv.NewReader(strings.NewReader(string(ex.body))).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 8)
		assert.Equal(t, auditCSVHeader, rows[0])
		assert.Equal(t, "lockout.unlocked", rows[1][2])
		assert.Equal(t, "127.0.0.1", rows[2][6])
		js := c.do("GET", "/dashboard/api/audit/export?format=json", nil, nil)
		require.Equal(t, 200, js.status)
		assert.Contains(t, js.header.Get("Content-Disposition"), "audit-")
		assert.Equal(t, 400, c.do("GET", "/dashboard/api/audit/export?format=xml", nil, nil).status)

		// Who ended the session.
		det := c.do("GET", "/dashboard/api/sessions/"+s1, nil, nil).json(t)
		assert.Equal(t, "bootstrap (ADMIN_TOKEN)", det["endedBy"])
	})
}

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }
