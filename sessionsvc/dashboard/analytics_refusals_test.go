package dashboard

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// policyEnricher is a login policy for tests: the pre-login check refuses
// deniedIP, the registration refuses deniedUser, and a policy is active
// (an unreadable login answer is refused).
type policyEnricher struct{}

const (
	deniedIP   = "203.0.113.66"
	deniedUser = "mallory"
)

func (policyEnricher) EnrichLogin(_ context.Context, l enrich.Login) (enrich.Result, error) {
	r := enrich.Result{Score: 90, DeviceType: "desktop"}
	if l.UserID == deniedUser {
		r.Deny, r.DenyReason, r.DenyMessage = true, protocol.ReasonPolicy, "Logins from here are not allowed."
	}
	return r, nil
}

func (policyEnricher) FailedLogin(context.Context, protocol.FailedLogin, time.Time) (bool, error) {
	return false, nil
}

func (policyEnricher) SessionEnded(context.Context, []store.Session, string, time.Time) []store.Alert {
	return nil
}

func (policyEnricher) UserBlocked(context.Context, string, []store.Session, time.Time) []store.Alert {
	return nil
}

func (policyEnricher) CheckLoginRequest(_ context.Context, ip, _ string, _ time.Time) (enrich.RequestDecision, error) {
	if ip == deniedIP {
		return enrich.RequestDecision{Deny: true, Message: "Logins through Tor are not allowed."}, nil
	}
	return enrich.RequestDecision{Score: 100}, nil
}

func (policyEnricher) LoginPolicyActive() bool { return true }

func refusalsBy(t *testing.T, d map[string]any) map[string]float64 {
	t.Helper()
	by := map[string]float64{}
	for _, x := range d["refusalsByReason"].([]any) {
		by[x.(map[string]any)["name"].(string)] = x.(map[string]any)["count"].(float64)
	}
	return by
}

// TestAnalyticsRefusalsByReason: every refused login is counted once under
// its reason, through the internal API as the proxy calls it — wrong
// credentials (failed logins), lockout (the check answering locked, and a
// registration refused as locked), policy (the check, the registration, an
// unreadable answer), blocked (a blocked user's login) — and an admin
// blocking a user is not a refused login. Past counts stay: neither a new
// failure from the same address (which prunes that address's failed-login
// records of more than a day) nor the revocation log's compaction takes
// any away.
func TestAnalyticsRefusalsByReason(t *testing.T) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) { testRefusalsByReason(t, be.URL(t)) })
	}
}

func testRefusalsByReason(t *testing.T, dbURL string) {
	e := newTestEnvHooks(t, dbURL, service.Hooks{Mounts: Mounts,
		Enricher: func(context.Context, service.Deps) (enrich.Enricher, server.Geolocator, error) {
			return policyEnricher{}, nil, nil
		}})
	ctx := context.Background()
	now := time.Now().UTC()
	exp := now.Add(time.Hour).Unix()
	reg := func(user, ip, identifier, key string) map[string]any {
		return e.internal(t, protocol.PathSessions, protocol.RegisterRequest{UserID: user, IP: ip, Identifier: identifier,
			Keys: []string{"fp:" + key}, ExpiresAt: exp, UserAgent: "Mozilla/5.0", Route: "/api/auth/local"})
	}

	// A failure from 198.51.100.9 30 hours ago (as the proxy reported it then).
	old := store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ip:198.51.100.9", Kind: store.CounterIP,
		Subject: "198.51.100.9", At: now.Add(-30 * time.Hour), Threshold: 50, Window: 15 * time.Minute}, LockFor: 15 * time.Minute}
	_, err := e.st.RecordLoginFailures(ctx, []store.LoginFailure{old}, "ip:198.51.100.9", nil)
	require.NoError(t, err)
	// Wrong credentials: 6 for bob (the fifth locks the identifier), 1
	// more from the address above.
	for range 6 {
		e.internal(t, protocol.PathFailed, protocol.FailedLogin{IP: "198.51.100.7", Identifier: "bob", Status: 400})
	}
	e.internal(t, protocol.PathFailed, protocol.FailedLogin{IP: "198.51.100.9", Identifier: "zoe", Status: 400})
	// Lockout: 3 checks for bob refused as locked, and a login for bob
	// that was already on its way when the lock fell.
	for range 3 {
		a := e.internal(t, protocol.PathLoginCheck, protocol.LoginCheck{IP: "198.51.100.8", Identifier: "bob", UserAgent: "test"})
		require.Equal(t, protocol.ReasonLocked, a["reason"], a)
	}
	a := reg("bob-id", "198.51.100.8", "bob", "bob1")
	require.Equal(t, protocol.ReasonLocked, a["reason"], a)
	// Policy: 2 checks refused, a registration refused, an unreadable
	// login answer refused.
	for range 2 {
		a := e.internal(t, protocol.PathLoginCheck, protocol.LoginCheck{IP: deniedIP, Identifier: "eve", UserAgent: "test"})
		require.Equal(t, protocol.ReasonPolicy, a["reason"], a)
	}
	a = reg(deniedUser, "198.51.100.20", "mallory", "mal1")
	require.Equal(t, protocol.ReasonPolicy, a["reason"], a)
	a = e.internal(t, protocol.PathUnreadable, protocol.UnreadableLogin{IP: "198.51.100.21", Status: 200, Why: protocol.UnreadableNotJSON})
	require.Equal(t, protocol.ReasonPolicy, a["reason"], a)
	// Blocked: an admin blocks carol, who has two open sessions (not a
	// refused login), then carol logs in (refused).
	e.seed(seedOpt{user: "carol", ip: "198.51.100.30", login: now.Add(-2 * time.Hour)})
	e.seed(seedOpt{user: "carol", ip: "198.51.100.31", login: now.Add(-time.Hour)})
	c := e.admin()
	bb := c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "block", "userIds": []string{"carol"}})
	require.Equal(t, 200, bb.status, string(bb.body))
	a = reg("carol", "198.51.100.30", "carol", "carol1")
	require.Equal(t, protocol.ReasonBlocked, a["reason"], a)
	// An allowed login, for contrast.
	a = reg("dave", "198.51.100.40", "dave", "dave1")
	require.Equal(t, protocol.DecisionAllow, a["decision"], a)

	want := map[string]float64{"credentials": 7, "lockout": 4, "policy": 4, "blocked": 1}
	d := c.data("/dashboard/api/analytics?range=24h&fresh=1")
	assert.Equal(t, want, refusalsBy(t, d))
	assert.EqualValues(t, 7, d["totalRefusals"], "the refusals series: wrong credentials")
	want7 := map[string]float64{"credentials": 8, "lockout": 4, "policy": 4, "blocked": 1}
	week := c.data("/dashboard/api/analytics?range=7d&fresh=1")
	assert.Equal(t, want7, refusalsBy(t, week), "the failure of 30 hours ago still counts")
	assert.EqualValues(t, 8, week["totalRefusals"])

	// The revocation log compacted (every token expired): the counts stay.
	require.NoError(t, e.st.RevokeKeys(ctx, []string{"fp:tail"}, protocol.ReasonLogout, now.Add(240*time.Hour), now))
	n, err := e.st.Compact(ctx, now.Add(48*time.Hour))
	require.NoError(t, err)
	require.Positive(t, n)
	week = c.data("/dashboard/api/analytics?range=7d&fresh=1")
	assert.Equal(t, want7, refusalsBy(t, week), "after compaction")
}
