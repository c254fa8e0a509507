package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

const a = "/magic-sessionmanager"

type fakeGeo struct{}

func (fakeGeo) Geolocate(ctx context.Context, ip string) (any, error) {
	return map[string]string{"ip": ip, "country": "Testland"}, nil
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer nope"}, {"Authorization": "Token " + testAdmin}} {
		r := e.do("GET", a+"/sessions", nil, hdr)
		assert.Equal(t, 401, r.status)
		assert.Equal(t, "UnauthorizedError", r.body["error"].(map[string]any)["name"])
		assert.Equal(t, "Missing or invalid credentials", r.body["error"].(map[string]any)["message"], "Strapi's message, as the user API's")
		assert.NotEmpty(t, r.body["error"].(map[string]any)["details"].(map[string]any)["cause"])
	}
	// Two Authorization headers, the good one first: which would a proxy
	// have checked? Refused, as on the user API; likewise two internal keys.
	for path, hdr := range map[string][]string{
		a + "/sessions":              {"Authorization", "Bearer " + testAdmin, "Bearer nope"},
		"/internal/v1/sync?cursor=0": {protocol.HeaderKey, testKey, "other"},
	} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header[http.CanonicalHeaderKey(hdr[0])] = hdr[1:]
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		assert.Equal(t, 401, rec.Code, path)
	}
	// A revoked admin token stops working.
	tok, err := e.st.CreateAdminToken(t.Context(), "tmp", HashAdminToken("tmp-token"), time.Now())
	require.NoError(t, err)
	assert.Equal(t, 200, e.do("GET", a+"/sessions", nil, map[string]string{"Authorization": "Bearer tmp-token"}).status)
	require.NoError(t, e.st.RevokeAdminToken(t.Context(), tok.ID))
	assert.Equal(t, 401, e.do("GET", a+"/sessions", nil, map[string]string{"Authorization": "Bearer tmp-token"}).status)
	// User tokens are not admin tokens.
	assert.Equal(t, 401, e.user(token(t, "x", "", nil), "GET", a+"/sessions", nil).status)
}

func TestAdminListing(t *testing.T) { onBackends(t, testAdminListing) }

func testAdminListing(t *testing.T, e *env) {
	var all []string
	for i := 0; i < 5; i++ {
		user := fmt.Sprintf("user%d", i%2)
		all = append(all, e.login(user, token(t, user, fmt.Sprintf("s%d", i), nil), ""))
		e.clock.Add(time.Minute)
	}
	// s0 logged out, s1 terminated, s2 idle (no activity for 20 minutes).
	require.Equal(t, 200, e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"sid:s0"}}).status)
	require.Equal(t, 200, e.admin("POST", a+"/sessions/"+all[1]+"/terminate", nil).status)
	e.clock.Add(20 * time.Minute)
	e.internal("POST", protocol.PathActivity, []protocol.Activity{
		{Key: "sid:s3", At: e.clock.Now().UnixMilli()}, {Key: "sid:s4", At: e.clock.Now().UnixMilli()}})
	// The active and idle filters read the merged lastActive (a service
	// merges every second, lifecycle.RunMerger).
	_, err := e.st.MergeActivity(t.Context(), 1000)
	require.NoError(t, err)

	cases := []struct {
		name  string
		path  string
		want  []string
		total float64
	}{
		{"sort loginTime asc", a + "/sessions?sort=loginTime:asc", all, 5},
		{"page 2", a + "/sessions?sort=loginTime&page=2&pageSize=2", all[2:4], 5},
		{"strapi pagination", a + "/sessions?sort=-loginTime&pagination[page]=1&pagination[pageSize]=1", all[4:5], 5},
		{"active", a + "/sessions?status=active&sort=loginTime", []string{all[3], all[4]}, 2},
		{"idle", a + "/sessions?status=idle", []string{all[2]}, 1},
		{"loggedout", a + "/sessions?status=loggedout", []string{all[0]}, 1},
		{"terminated", a + "/sessions?status=terminated", []string{all[1]}, 1},
		{"user filter", a + "/sessions?userId=user1&sort=loginTime", []string{all[1], all[3]}, 2},
		{"search", a + "/sessions?search=" + all[2], []string{all[2]}, 1},
		{"truly active only", a + "/sessions/active?sort=loginTime", all[3:], 2},
		{"active stays active", a + "/sessions/active?sort=loginTime&status=all", all[3:], 2},
		{"active stays active (filter)", a + "/sessions/active?sort=loginTime&filter=terminated", all[3:], 2},
		{"user sessions", a + "/user/user0/sessions?sort=loginTime", []string{all[0], all[2], all[4]}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admin("GET", tc.path, nil)
			require.Equal(t, 200, r.status, string(r.raw))
			assert.Equal(t, tc.want, ids(r))
			meta := r.body["meta"].(map[string]any)
			assert.Equal(t, float64(len(tc.want)), meta["count"], "count: the sessions listed (upstream)")
			assert.Equal(t, tc.total, meta["total"])
			assert.Equal(t, tc.total, meta["pagination"].(map[string]any)["total"])
		})
	}
	r := e.admin("GET", a+"/sessions", nil)
	meta := r.body["meta"].(map[string]any)
	assert.Equal(t, float64(2), meta["active"])
	assert.Equal(t, float64(3), meta["inactive"])
	first := r.body["data"].([]any)[2].(map[string]any)
	assert.Equal(t, false, first["isTrulyActive"])
	assert.Equal(t, float64(23), first["minutesSinceActive"], "logged in at +2 min, now +25 min")

	for _, bad := range []string{"?page=0", "?pageSize=5000", "?sort=password", "?sort=loginTime:up", "?status=zombie", "?page=x"} {
		r := e.admin("GET", a+"/sessions"+bad, nil)
		assert.Equal(t, 400, r.status, bad)
	}
}

func TestAdminActions(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Geolocator = fakeGeo{} })
	epoch, _ := e.st.Epoch(t.Context())
	s1 := e.login("u1", token(t, "u1", "x1", nil), "")
	s2 := e.login("u1", token(t, "u1", "x2", nil), "")
	s3 := e.login("u2", token(t, "u2", "x3", nil), "")

	r := e.admin("POST", a+"/sessions/"+s1+"/terminate", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, true, r.body["success"])
	s, _ := e.st.GetSession(t.Context(), s1)
	assert.False(t, s.Active)
	assert.True(t, s.TerminatedManually)
	assert.Equal(t, protocol.ReasonManual, s.TerminationReason)
	r = e.admin("POST", a+"/sessions/"+s1+"/terminate", nil)
	assert.Equal(t, 200, r.status, "again: nothing to do")
	assert.Equal(t, 200, e.admin("POST", a+"/sessions/sess_missing/terminate", nil).status, "unknown id: 200 as upstream")
	assert.Equal(t, 200, e.admin("POST", a+"/sessions/bad%20id/terminate", nil).status)

	r = e.admin("POST", a+"/user/u1/terminate-all", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "All sessions terminated for user u1", r.body["message"])
	s, _ = e.st.GetSession(t.Context(), s2)
	assert.False(t, s.Active)
	snap := e.syncPage(epoch, 0, 0)
	var sawNB bool
	for _, c := range snap.Changes {
		sawNB = sawNB || (c.Op == protocol.OpNotBefore && c.User == "u1")
	}
	assert.True(t, sawNB, "terminate-all publishes a not-before")

	// Block: sessions end with reason blocked, the feed carries the block, the user API refuses.
	r = e.admin("POST", a+"/user/u2/toggle-block", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, true, r.body["blocked"])
	s, _ = e.st.GetSession(t.Context(), s3)
	assert.Equal(t, protocol.ReasonBlocked, s.TerminationReason)
	var blocked bool
	for _, c := range e.syncPage(epoch, 0, 0).Changes {
		blocked = blocked || (c.Op == protocol.OpBlock && c.User == "u2")
	}
	assert.True(t, blocked)
	r = e.user(token(t, "u2", "", nil), "GET", u+"/my-sessions", nil)
	assert.Equal(t, 401, r.status, "blocked: 401 reason blocked, as upstream")
	assert.Equal(t, "blocked", r.header.Get("X-Session-Terminated-Reason"))
	assert.Equal(t, "Your account has been blocked. Contact support.", r.body["error"].(map[string]any)["message"])
	r = e.admin("POST", a+"/user/u2/toggle-block", nil)
	assert.Equal(t, false, r.body["blocked"])
	assert.Equal(t, 200, e.user(token(t, "u2", "", nil), "GET", u+"/my-sessions", nil).status)
	r = e.admin("POST", a+"/user/u2/toggle-block", `{"blocked":false}`)
	assert.Equal(t, false, r.body["blocked"], "explicit set")
	assert.Equal(t, 400, e.admin("POST", a+"/user/u2/toggle-block", `{"blocked":"yes"}`).status)

	// Delete and clean-inactive.
	r = e.admin("DELETE", a+"/sessions/"+s1, nil)
	require.Equal(t, 200, r.status)
	_, err := e.st.GetSession(t.Context(), s1)
	assert.Error(t, err)
	assert.Equal(t, 200, e.admin("DELETE", a+"/sessions/"+s1, nil).status, "deleting what is gone is done")
	assert.Equal(t, 404, e.admin("POST", a+"/user/nobody/toggle-block", nil).status, "unknown user")
	r = e.admin("POST", a+"/sessions/clean-inactive", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, float64(2), r.body["deletedCount"])

	// Geolocation.
	r = e.admin("GET", a+"/geolocation/8.8.8.8", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "Testland", r.body["data"].(map[string]any)["country"])
	assert.Equal(t, 400, e.admin("GET", a+"/geolocation/not-an-ip", nil).status)
	e2 := newEnv(t)
	r = e2.admin("GET", a+"/geolocation/8.8.8.8", nil)
	assert.Equal(t, 501, r.status)
	assert.Contains(t, r.body["error"].(map[string]any)["message"], "geolocation")
}

// TestCleanInactiveDeletesEndedSessionsOnly: clean-inactive deletes the
// ended sessions (the Strapi plugin's deleteInactiveSessions) and nothing
// else: the lockout counters, the dashboard's sign-in throttle
// (failed_logins "dashboard:<ip>") and the alerts stay, sent or not.
func TestCleanInactiveDeletesEndedSessionsOnly(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		now := e.clock.Now()
		live := e.login("alice", token(t, "alice", "s1", nil), "")
		ended := e.login("bob", token(t, "bob", "s2", nil), "")
		require.Equal(t, 200, e.admin("POST", a+"/sessions/"+ended+"/terminate", nil).status)

		for range 3 {
			_, err := e.st.RecordFailedLogin(ctx, "dashboard:10.1.2.3", now, time.Hour)
			require.NoError(t, err)
		}
		_, err := e.st.RecordLoginFailure(ctx, store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ip:10.1.2.3", Kind: store.CounterIP, Subject: "10.1.2.3",
			At: now, Window: time.Hour, Threshold: 1}, LockFor: time.Hour}, nil)
		require.NoError(t, err)
		require.NoError(t, e.st.EnqueueAlerts(ctx, []store.Alert{
			{Event: "login.locked", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now},
			{Event: "login.success", Channel: "email", Payload: json.RawMessage(`{}`), NextAttempt: now.Add(time.Hour)},
		}))
		sent, err := e.st.ClaimAlerts(ctx, "r1", 1, now, time.Minute)
		require.NoError(t, err)
		require.Len(t, sent, 1)
		require.NoError(t, e.st.MarkAlertSent(ctx, sent[0].ID, now))

		r := e.admin("POST", a+"/sessions/clean-inactive", nil)
		require.Equal(t, 200, r.status, string(r.raw))
		assert.Equal(t, float64(1), r.body["deletedCount"])
		assert.Equal(t, true, r.body["success"])
		assert.Equal(t, "Successfully deleted 1 inactive sessions", r.body["message"])

		_, err = e.st.GetSession(ctx, ended)
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = e.st.GetSession(ctx, live)
		assert.NoError(t, err)
		n, err := e.st.CountFailedLogins(ctx, "dashboard:10.1.2.3", now.Add(-time.Minute))
		require.NoError(t, err)
		assert.Equal(t, 3, n, "the dashboard sign-in throttle keeps counting")
		locks, err := e.st.ActiveLockouts(ctx, []string{"ip:10.1.2.3"}, now)
		require.NoError(t, err)
		assert.Len(t, locks, 1, "the lockout stays")
		all, err := e.st.ListAlerts(ctx, false, 10)
		require.NoError(t, err)
		assert.Len(t, all, 2, "the alerts stay, sent or not")
	})
}

func TestAdminSettings(t *testing.T) {
	kr, err := secrets.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.Keyring = kr; c.InactivityTimeout = 20 * time.Minute })
	r := e.admin("GET", a+"/settings", nil)
	require.Equal(t, 200, r.status)
	st := r.body["settings"].(map[string]any)
	assert.Equal(t, float64(20), st["inactivityTimeout"])
	assert.Equal(t, true, r.body["success"])

	r = e.admin("PUT", a+"/settings", `{"settings":{"inactivityTimeout":5,"smtp":{"host":"mail","password":"p4ss"}}}`)
	require.Equal(t, 200, r.status, string(r.raw))
	st = r.body["settings"].(map[string]any)
	assert.Equal(t, float64(5), st["inactivityTimeout"])
	assert.Equal(t, "********", st["smtp"].(map[string]any)["password"])
	raw, err := e.st.GetSettings(t.Context())
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "p4ss")
	assert.Equal(t, 5*time.Minute, e.srv.InactivityTimeout(t.Context()), "the new timeout applies")

	for body, status := range map[string]int{
		`{"inactivityTimeout":0}`: 200, `{"nope":1}`: 200, `{`: 400, ``: 400, `{"retentionDays":-1}`: 200, `[]`: 400,
		`{"smtp":{"nope":1}}`: 400,
	} {
		r := e.admin("PUT", a+"/settings", body)
		assert.Equal(t, status, r.status, body+": "+string(r.raw))
	}
	e2 := newEnv(t)
	r = e2.admin("PUT", a+"/settings", `{"smtp":{"password":"p"}}`)
	assert.Equal(t, 400, r.status)
	assert.Contains(t, r.body["error"].(map[string]any)["message"], "SESSION_ENCRYPTION_KEY")
}

// The dashboard's strict settings path refuses what the plugin's path
// drops (webhook URLs off Discord's and Slack's hosts) and a webhook that
// takes the name of the slack or discord channel, naming the field.
func TestAdminSettingsStrictWebhooks(t *testing.T) {
	kr, err := secrets.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.Keyring = kr })
	for _, tc := range []struct{ name, body, field string }{
		{"webhook named slack", `{"enableWebhooks":true,"slackWebhookUrl":"https://hooks.slack.com/services/T/B/X","webhooks":[{"name":"slack","url":"http://127.0.0.1:18999/generic","secret":"s3cret"}]}`,
			"webhooks[0].name"},
		{"the audit's body", `{"enableWebhooks":true,"slackWebhookUrl":"http://127.0.0.1:18999/slack","webhooks":[{"name":"slack","url":"http://127.0.0.1:18999/generic","secret":"s3cret"}]}`,
			"slackWebhookUrl"},
		{"discord off the allowlist", `{"discordWebhookUrl":"https://127.0.0.1/api/webhooks/1/x"}`, "discordWebhookUrl"},
		{"slack off the allowlist", `{"slackWebhookUrl":"https://hooks.slack.com.evil.example/x"}`, "slackWebhookUrl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admin("PUT", a+"/settings?strict=1", tc.body)
			require.Equal(t, 400, r.status, string(r.raw))
			assert.Contains(t, r.body["error"].(map[string]any)["message"], tc.field+":")
		})
	}
	raw, err := e.st.GetSettings(t.Context())
	require.NoError(t, err)
	assert.Nil(t, raw, "nothing stored")

	r := e.admin("PUT", a+"/settings?strict=1", `{"enableWebhooks":true,"slackWebhookUrl":"https://hooks.slack.com/services/T/B/X","webhooks":[{"name":"ops","url":"https://siem.example/in","secret":"s3cret"}]}`)
	require.Equal(t, 200, r.status, string(r.raw))
	// The plugin's path drops the URL off the allowlist, as upstream does.
	r = e.admin("PUT", a+"/settings", `{"enableWebhooks":true,"slackWebhookUrl":"http://127.0.0.1:18999/slack"}`)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "", r.body["settings"].(map[string]any)["slackWebhookUrl"])
}

// The admin list pages by keyset cursor (meta.pagination.nextCursor) and
// says how its counts were made.
func TestAdminListCursorAndCounts(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		opts := store.SeedOptions{N: 30, Now: time.Now().UTC()}
		require.NoError(t, store.Seed(context.Background(), e.st, opts, nil))
		seen := map[string]bool{}
		path := "/magic-sessionmanager/sessions?pageSize=10&sort=loginTime:desc"
		for page := 0; ; page++ {
			require.Less(t, page, 5)
			r := e.admin("GET", path, nil)
			require.Equal(t, 200, r.status, string(r.raw))
			meta := r.body["meta"].(map[string]any)
			assert.Equal(t, "maintained", meta["countMode"])
			assert.EqualValues(t, 30, meta["total"], "total: the whole selection (count: the sessions listed, as the Strapi plugin)")
			for _, s := range r.body["data"].([]any) {
				id, _ := s.(map[string]any)["id"].(string)
				if id == "" {
					id, _ = s.(map[string]any)["sessionId"].(string)
				}
				assert.False(t, seen[id], "no session twice")
				seen[id] = true
			}
			next, _ := meta["pagination"].(map[string]any)["nextCursor"].(string)
			if next == "" {
				break
			}
			path = "/magic-sessionmanager/sessions?pageSize=10&sort=loginTime:desc&cursor=" + url.QueryEscape(next)
		}
		assert.Len(t, seen, 30)
		r := e.admin("GET", "/magic-sessionmanager/sessions?cursor=bm9wZQ", nil)
		assert.Equal(t, 400, r.status, string(r.raw))
		// A filtered list counts (a short first page is its own count).
		s0, _ := store.SeedSession(0, opts)
		r = e.admin("GET", "/magic-sessionmanager/sessions?userId="+url.QueryEscape(s0.UserID), nil)
		require.Equal(t, 200, r.status, string(r.raw))
		assert.Equal(t, "exact", r.body["meta"].(map[string]any)["countMode"])
	})
}

// TestAdminActionsAudited: each state-changing admin route that succeeds
// writes one audit event naming the token, the subject and the address;
// refused and failed calls and reads write none.
func TestAdminActionsAudited(t *testing.T) {
	e := newEnv(t)
	s1 := e.login("alice", token(t, "alice", "s1", nil), "")
	e.login("bob", token(t, "bob", "s2", nil), "")
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		event        string
		subject      string
	}{
		{"GET", "/magic-sessionmanager/sessions", nil, 200, "", ""},
		{"POST", "/magic-sessionmanager/sessions/" + s1 + "/terminate", nil, 200, AuditSessionTerminated, s1},
		{"POST", "/magic-sessionmanager/sessions/sess_nope/terminate", nil, 200, "", ""}, // upstream's 200: nothing done
		{"DELETE", "/magic-sessionmanager/sessions/" + s1, nil, 200, AuditSessionDeleted, s1},
		{"POST", "/magic-sessionmanager/user/bob/toggle-block", map[string]any{"blocked": true}, 200, AuditUserBlocked, "bob"},
		{"POST", "/magic-sessionmanager/user/bob/toggle-block", map[string]any{"blocked": false}, 200, AuditUserUnblocked, "bob"},
		{"POST", "/magic-sessionmanager/user/bob/terminate-all", nil, 200, AuditUserTerminatedAll, "bob"},
		{"POST", "/magic-sessionmanager/sessions/clean-inactive", nil, 200, AuditSessionsPurged, ""},
		{"PUT", "/magic-sessionmanager/settings?strict=1", map[string]any{"inactivityTimeout": 0}, 400, "", ""},
		{"PUT", "/magic-sessionmanager/settings", map[string]any{"inactivityTimeout": 30}, 200, AuditSettingsChanged, ""},
	} {
		before, err := e.st.ListAudit(t.Context(), 0, 100)
		require.NoError(t, err)
		r := e.admin(tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.raw)
		after, err := e.st.ListAudit(t.Context(), 0, 100)
		require.NoError(t, err)
		if tc.event == "" {
			assert.Len(t, after, len(before), "%s %s: no audit event", tc.method, tc.path)
			continue
		}
		require.Len(t, after, len(before)+1, "%s %s", tc.method, tc.path)
		ev := after[0]
		assert.Equal(t, tc.event, ev.Event)
		assert.Equal(t, tc.subject, ev.Subject)
		assert.Equal(t, "test", ev.Actor, "the admin token's name")
		assert.Contains(t, string(ev.Detail), `"ip":"127.0.0.1"`)
	}
	// An unauthenticated call writes nothing.
	before, err := e.st.ListAudit(t.Context(), 0, 100)
	require.NoError(t, err)
	assert.Equal(t, 401, e.do("POST", "/magic-sessionmanager/user/bob/terminate-all", nil, nil).status)
	after, err := e.st.ListAudit(t.Context(), 0, 100)
	require.NoError(t, err)
	assert.Len(t, after, len(before))
}

// TestTerminateAllAuditCountsSessions: the audit event of terminate-all
// says how many sessions it ended (the answer, upstream's shape, does not).
func TestTerminateAllAuditCountsSessions(t *testing.T) {
	e := newEnv(t)
	e.login("carol", token(t, "carol", "c1", nil), "")
	e.login("carol", token(t, "carol", "c2", nil), "")
	for _, want := range []int{2, 0} {
		r := e.admin("POST", a+"/user/carol/terminate-all", nil)
		require.Equal(t, 200, r.status, string(r.raw))
		assert.NotContains(t, r.body, "terminated", "the answer keeps upstream's shape")
		ev, err := e.st.ListAudit(t.Context(), 0, 1)
		require.NoError(t, err)
		require.Len(t, ev, 1)
		assert.Equal(t, AuditUserTerminatedAll, ev[0].Event)
		var det map[string]any
		require.NoError(t, json.Unmarshal(ev[0].Detail, &det))
		assert.Equal(t, float64(want), det["terminated"], "detail %s", ev[0].Detail)
		assert.Equal(t, "127.0.0.1", det["ip"])
	}
}

// TestBlockAlertsOnce: blocking a user raises user.blocked once, whether
// the block ended sessions or the user had none; setting a block the user
// already has and unblocking raise nothing.
func TestBlockAlertsOnce(t *testing.T) {
	fe := &fakeEnricher{result: enrich.Result{Score: 90}}
	e := newEnv(t, func(c *Config) { c.Enricher = fe })
	blockedAlerts := func() int {
		all, err := e.st.ListAlerts(t.Context(), false, 100)
		require.NoError(t, err)
		n := 0
		for _, a := range all {
			if a.Event == "user.blocked" {
				n++
			}
		}
		return n
	}
	r := e.admin("POST", a+"/user/nosessions/toggle-block", `{"blocked":true}`)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, true, r.body["blocked"])
	assert.Equal(t, 1, blockedAlerts(), "a user with no session: alerted all the same")
	assert.Equal(t, []string{"nosessions:0"}, fe.blocked)

	r = e.admin("POST", a+"/user/nosessions/toggle-block", `{"blocked":true}`)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, 1, blockedAlerts(), "already blocked: no second alert")
	r = e.admin("POST", a+"/user/nosessions/toggle-block", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, false, r.body["blocked"])
	assert.Equal(t, 1, blockedAlerts(), "an unblock raises nothing")

	e.login("dave", token(t, "dave", "d1", nil), "")
	e.login("dave", token(t, "dave", "d2", nil), "")
	r = e.admin("POST", a+"/user/dave/toggle-block", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, true, r.body["blocked"])
	assert.Equal(t, 2, blockedAlerts(), "one alert for the block, however many sessions it ended")
	assert.Equal(t, []string{"nosessions:0", "dave:2"}, fe.blocked)
	assert.Empty(t, fe.ended, "a block's alerts come from UserBlocked alone")
}

func TestQueryInt(t *testing.T) {
	tests := []struct {
		v       string
		want    int64
		errText string
	}{
		{v: "", want: 7},
		{v: "1", want: 1},
		{v: "100", want: 100},
		{v: "0", errText: "n must be an integer between 1 and 100"},
		{v: "101", errText: "n must be an integer between 1 and 100"},
		{v: "1.5", errText: "n must be an integer between 1 and 100"},
		{v: "x", errText: "n must be an integer between 1 and 100"},
	}
	for _, tc := range tests {
		got, err := queryInt(tc.v, "n", int64(7), 1, 100)
		if tc.errText != "" {
			var ae *apiError
			require.ErrorAs(t, err, &ae, tc.v)
			assert.Equal(t, 400, ae.Status)
			assert.Equal(t, tc.errText, ae.Message)
			continue
		}
		require.NoError(t, err, tc.v)
		assert.Equal(t, tc.want, got, tc.v)
	}
	_, err := queryInt("-1", "cursor", int64(0), 0, math.MaxInt64)
	assert.EqualError(t, err, "cursor must be an integer of at least 0")
}

// The admin list's answer is the bytes json.Marshal writes for its
// content (it is encoded without reflection: sessionview.AppendListJSON):
// decoded and encoded again by encoding/json it comes out the same, for
// sessions with and without a location, ended or not, with text that JSON
// escapes.
func TestAdminListEncoding(t *testing.T) { onBackends(t, testAdminListEncoding) }

func testAdminListEncoding(t *testing.T, e *env) {
	ctx := t.Context()
	now := e.clock.Now()
	for i, ss := range []store.Session{
		{UserID: "7", IP: "203.0.113.1", UserAgent: "Mozilla/5.0 <b>&\"quoted\"</b> \u2028 ü 🇩🇪", DeviceType: "desktop",
			Geo: &store.GeoLocation{Country: "Deutschland", CountryCode: "DE", City: "Köln", Latitude: 50.9375, Longitude: 6.96}},
		{UserID: "user-ä", IP: "2001:db8::1", BrowserName: "Firefox 133", OSName: "Linux", ScoreReasons: []string{"new <device>"}},
		{UserID: "0012", Geo: &store.GeoLocation{Country: "X"}},
	} {
		ss.LoginTime = now.Add(-time.Duration(i+1) * time.Hour)
		ss.LastActive = ss.LoginTime
		require.NoError(t, e.st.CreateSession(ctx, &ss, []store.SessionKey{{Key: fmt.Sprintf("sid:enc-%d", i), Kind: store.KeySession, ExpiresAt: now.Add(time.Hour)}}, nil))
		if i == 1 {
			_, err := e.st.EndSessions(ctx, store.EndFilter{SessionIDs: []string{ss.ID}}, protocol.ReasonLogout, false, now)
			require.NoError(t, err)
		}
	}
	for _, path := range []string{a + "/sessions", a + "/sessions?pageSize=2&sort=loginTime:asc", a + "/sessions?search=Deutsch"} {
		r := e.admin("GET", path, nil)
		require.Equal(t, 200, r.status, string(r.raw))
		var body struct {
			Data []sessionview.Session `json:"data"`
			Meta map[string]any        `json:"meta"`
		}
		require.NoError(t, json.Unmarshal(r.raw, &body))
		require.NotEmpty(t, body.Data, path)
		again, err := json.Marshal(map[string]any{"data": body.Data, "meta": body.Meta})
		require.NoError(t, err)
		assert.Equal(t, string(again)+"\n", string(r.raw), path)
	}
}

// settingsFail is a store whose settings reads fail while fail is set.
type settingsFail struct {
	store.Store
	fail atomic.Bool
}

func (s *settingsFail) GetSettings(ctx context.Context) (json.RawMessage, error) {
	if s.fail.Load() {
		return nil, store.ErrUnavailable
	}
	return s.Store.GetSettings(ctx)
}

// TestSettingsReachOtherReplicas: settings saved through one replica are in
// effect there at once and on another replica (same database) once its
// copy is SettingsMaxAge old; a failed reread keeps the copy it has.
func TestSettingsReachOtherReplicas(t *testing.T) {
	ctx := context.Background()
	saver := newEnv(t)
	st := &settingsFail{Store: saver.st}
	other := newEnvWithStore(t, st)
	minutes := func(e *env) int { return int(e.srv.Settings(ctx).InactivityDuration() / time.Minute) }
	require.Equal(t, 15, minutes(other), "the default, read and kept")

	r := saver.admin("PUT", "/magic-sessionmanager/settings", `{"inactivityTimeout":5}`)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, 5, minutes(saver), "at once where it was saved")
	other.clock.Add(SettingsMaxAge - time.Millisecond)
	assert.Equal(t, 15, minutes(other), "the other replica's copy is still fresh")
	other.clock.Add(time.Millisecond)
	assert.Equal(t, 5, minutes(other), "reread once its copy is SettingsMaxAge old")

	r = saver.admin("PUT", "/magic-sessionmanager/settings", `{"inactivityTimeout":7}`)
	require.Equal(t, 200, r.status, string(r.raw))
	st.fail.Store(true)
	other.clock.Add(SettingsMaxAge)
	assert.Equal(t, 5, minutes(other), "a failed reread keeps the settings read before")
	st.fail.Store(false)
	assert.Equal(t, 7, minutes(other), "the next call rereads")
}
