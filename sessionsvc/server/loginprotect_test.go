package server

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// replicas starts two servers on one database (two sessionsvc replicas)
// sharing one clock; the first has the admin token.
func replicas(t *testing.T, url string) (*env, *env) {
	t.Helper()
	sts := storetest.Replicas(t, url, 2)
	a, st := newEnvWithStore(t, sts[0]), sts[1]
	s, err := New(Config{Store: st, InternalKey: testKey, Now: a.clock.Now})
	require.NoError(t, err)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return a, &env{t: t, st: st, srv: s, http: hs, clock: a.clock}
}

func (e *env) check(ip, identifier string) resp {
	e.t.Helper()
	r := e.internal("POST", protocol.PathLoginCheck, protocol.LoginCheck{IP: ip, Identifier: identifier, UserAgent: "test"})
	require.Equal(e.t, 200, r.status, string(r.raw))
	return r
}

func (e *env) fail(ip string, identifier any) resp {
	e.t.Helper()
	return e.internal("POST", protocol.PathFailed, map[string]any{"ip": ip, "identifier": identifier, "status": 400})
}

// TestLockoutExactAcrossReplicas: logins spread over two replicas on one
// database get exactly the threshold of guesses, 20 of 20 times: each
// attempt is a check then (the app refused it) a failure report; of a
// concurrent rush after threshold-1 failures exactly one check is let
// through; its failure locks the identifier on both replicas; exactly one
// lock event is recorded per trial.
func TestLockoutExactAcrossReplicas(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r1, r2 := replicas(t, b.URL(t))
			rs := []*env{r1, r2}
			const threshold = 5 // the seed's maxFailedLogins
			for trial := range 20 {
				ident := fmt.Sprintf("User%d@Example.com", trial)
				ip := fmt.Sprintf("198.51.100.%d", trial+1)
				// A rush of attempts: check, and report a failure when let through.
				rush := func(n, from int) (admitted, refused int) {
					var wg sync.WaitGroup
					var mu sync.Mutex
					for i := range n {
						wg.Go(func() {
							r := rs[(from+i)%2]
							a := r.check(ip, ident)
							ok := a.body["decision"] == protocol.DecisionAllow
							if ok {
								f := r.fail(ip, ident)
								assert.Equal(t, 200, f.status, string(f.raw))
							} else {
								assert.Equal(t, protocol.ReasonLocked, a.body["reason"])
							}
							mu.Lock()
							defer mu.Unlock()
							if ok {
								admitted++
							} else {
								refused++
							}
						})
					}
					wg.Wait()
					return admitted, refused
				}
				admitted, _ := rush(threshold-1, trial)
				require.Equal(t, threshold-1, admitted, "trial %d", trial)
				admitted, refused := rush(10, trial)
				assert.Equal(t, 1, admitted, "trial %d: of a rush after %d failures, one guess reaches the app", trial, threshold-1)
				assert.Equal(t, 9, refused)
				for _, r := range rs {
					a := r.check("203.0.113.9", strings.ToLower(ident))
					assert.Equal(t, protocol.DecisionDeny, a.body["decision"], "trial %d: locked after %d failures", trial, threshold)
					assert.Equal(t, protocol.ReasonLocked, a.body["reason"])
					assert.Greater(t, a.body["retryAfter"], float64(1), "a lock, not attempts in flight")
				}
			}
			audit, err := r1.st.ListAudit(t.Context(), 0, 100)
			require.NoError(t, err)
			assert.Len(t, audit, 20, "one lock event per trial")
			list := r2.admin("GET", "/magic-sessionmanager/lockouts", nil)
			require.Equal(t, 200, list.status, string(list.raw))
			assert.Len(t, list.body["data"], 20)

			// A burst far over the threshold still locks once and counts every failure.
			var wg sync.WaitGroup
			var mu sync.Mutex
			lockedAnswers := 0
			for i := range 12 {
				wg.Go(func() {
					r := rs[i%2].fail("192.0.2.7", "burst")
					mu.Lock()
					defer mu.Unlock()
					if r.body["locked"] == true {
						lockedAnswers++
					}
				})
			}
			wg.Wait()
			assert.Equal(t, 12-threshold+1, lockedAnswers, "the threshold-th failure and every later one answer locked")
			act, err := r1.st.ActiveLockouts(t.Context(), []string{"ident:burst"}, r1.clock.Now())
			require.NoError(t, err)
			require.Len(t, act, 1)
			assert.Equal(t, 12, act[0].Failures)
		})
	}
}

// TestLockedAnswerIsOneAnswer: while locked, every check for the identifier
// (any address, any case or spacing) gets the same bytes; the answer does
// not depend on anything the request carries besides what names the counters.
func TestLockedAnswerIsOneAnswer(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r1, r2 := replicas(t, b.URL(t))
			for range 5 {
				r1.fail("198.51.100.1", "alice")
			}
			first := r1.check("198.51.100.1", "alice")
			assert.JSONEq(t, `{"decision":"deny","reason":"locked","message":"Too many requests. Please try again later.","retryAfter":900}`, string(first.raw))
			for _, r := range []resp{r1.check("198.51.100.1", "alice"), r2.check("198.51.100.1", "alice"),
				r2.check("203.0.113.1", "  ALICE "), r1.check("198.51.100.1", "Alice")} {
				assert.Equal(t, string(first.raw), string(r.raw))
			}
			r1.clock.Add(14*time.Minute + 30*time.Second)
			assert.Equal(t, float64(30), r1.check("198.51.100.1", "alice").body["retryAfter"])
			r1.clock.Add(30 * time.Second)
			assert.Equal(t, protocol.DecisionAllow, r1.check("198.51.100.1", "alice").body["decision"], "the lock ends after lockoutMinutes")
		})
	}
}

// TestIPAndIdentifierThresholdsIndependent: the address counter has its own
// threshold (ipMaxFailedLogins) and the identifier counter its own.
func TestIPAndIdentifierThresholdsIndependent(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		put := e.admin("PUT", "/magic-sessionmanager/settings", map[string]any{"maxFailedLogins": 3, "ipMaxFailedLogins": 6, "ipLockoutMinutes": 5})
		require.Equal(t, 200, put.status, string(put.raw))

		// One address, many identifiers: no identifier reaches 3; the address reaches 6.
		for i := range 5 {
			assert.Equal(t, false, e.fail("198.51.100.1", fmt.Sprintf("user%d", i)).body["locked"])
		}
		assert.Equal(t, protocol.DecisionAllow, e.check("198.51.100.1", "user0").body["decision"])
		assert.Equal(t, true, e.fail("198.51.100.1", "user5").body["locked"], "the sixth failure from the address locks it")
		assert.Equal(t, protocol.ReasonLocked, e.check("198.51.100.1", "someone-else").body["reason"], "every identifier from the address")
		assert.Equal(t, protocol.DecisionAllow, e.check("198.51.100.2", "user0").body["decision"], "the identifiers are not locked")

		// One identifier, many addresses: locked at 3 whatever the address; the addresses are not.
		for i := range 2 {
			assert.Equal(t, false, e.fail(fmt.Sprintf("203.0.113.%d", i+1), "bob").body["locked"])
		}
		assert.Equal(t, true, e.fail("203.0.113.3", "bob").body["locked"])
		assert.Equal(t, protocol.ReasonLocked, e.check("192.0.2.1", "BOB").body["reason"])
		assert.Equal(t, protocol.DecisionAllow, e.check("203.0.113.1", "carol").body["decision"])

		// The address lock lasts ipLockoutMinutes, the identifier lock lockoutMinutes (15).
		e.clock.Add(5 * time.Minute)
		assert.Equal(t, protocol.DecisionAllow, e.check("198.51.100.1", "someone-else").body["decision"])
		assert.Equal(t, protocol.ReasonLocked, e.check("192.0.2.1", "bob").body["reason"])

		// Address lockout off: failures from one address never lock it.
		put = e.admin("PUT", "/magic-sessionmanager/settings", map[string]any{"ipMaxFailedLogins": 0})
		require.Equal(t, 200, put.status, string(put.raw))
		for i := range 10 {
			e.fail("198.51.100.9", fmt.Sprintf("spray%d", i))
		}
		assert.Equal(t, protocol.DecisionAllow, e.check("198.51.100.9", "x").body["decision"])
	})
}

// TestProgressiveDelay: with progressiveLockout the threshold-th failure
// locks for 1 s, the next for 2 s, and so on.
func TestProgressiveDelay(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		put := e.admin("PUT", "/magic-sessionmanager/settings", map[string]any{"progressiveLockout": true, "maxFailedLogins": 3})
		require.Equal(t, 200, put.status, string(put.raw))
		for range 2 {
			assert.Equal(t, false, e.fail("198.51.100.1", "frank").body["locked"])
		}
		assert.Equal(t, true, e.fail("198.51.100.1", "frank").body["locked"])
		assert.Equal(t, float64(1), e.check("203.0.113.1", "frank").body["retryAfter"])
		e.clock.Add(time.Second)
		assert.Equal(t, protocol.DecisionAllow, e.check("203.0.113.1", "frank").body["decision"])
		assert.Equal(t, true, e.fail("198.51.100.1", "frank").body["locked"])
		assert.Equal(t, float64(2), e.check("203.0.113.1", "frank").body["retryAfter"])
		e.clock.Add(2 * time.Second)
		e.fail("198.51.100.1", "frank")
		assert.Equal(t, float64(4), e.check("203.0.113.1", "frank").body["retryAfter"])
		all, err := e.st.ListAudit(t.Context(), 0, 10)
		require.NoError(t, err)
		var audit []store.AuditEvent // the settings change is audited too
		for _, a := range all {
			if a.Event == store.AuditLockoutLocked {
				audit = append(audit, a)
			}
		}
		assert.Len(t, audit, 1, "one lock event per window")
	})
}

// TestUnlockAndAudit: an admin lists and lifts lockouts; both ends are
// audit events; a success resets the identifier's counter.
func TestUnlockAndAudit(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		for range 5 {
			e.fail("198.51.100.1", "Dave")
		}
		list := e.admin("GET", "/magic-sessionmanager/lockouts", nil)
		require.Equal(t, 200, list.status, string(list.raw))
		data := list.body["data"].([]any)
		require.Len(t, data, 1)
		l := data[0].(map[string]any)
		assert.Equal(t, "identifier", l["type"])
		assert.Equal(t, "dave", l["value"])
		assert.Equal(t, float64(5), l["failures"])
		assert.Equal(t, float64(900), l["retryAfter"])
		assert.NotEmpty(t, l["lockedUntil"])

		for _, bad := range []map[string]any{{"type": "user", "value": "dave"}, {"type": "ip", "value": "not-an-ip"}, {"value": "nope:x"}} {
			r := e.admin("POST", "/magic-sessionmanager/lockouts/unlock", bad)
			assert.Equal(t, 400, r.status, "%v: %s", bad, r.raw)
		}
		r := e.admin("POST", "/magic-sessionmanager/lockouts/unlock", map[string]any{"type": "identifier", "value": "carol"})
		assert.Equal(t, 404, r.status)
		r = e.admin("POST", "/magic-sessionmanager/lockouts/unlock", map[string]any{"type": "identifier", "value": " DAVE"})
		require.Equal(t, 200, r.status, string(r.raw))
		assert.Equal(t, protocol.DecisionAllow, e.check("198.51.100.1", "dave").body["decision"])
		r = e.admin("POST", "/magic-sessionmanager/lockouts/unlock", map[string]any{"type": "identifier", "value": "dave"})
		assert.Equal(t, 404, r.status, "already lifted")
		unauth := e.do("GET", "/magic-sessionmanager/lockouts", nil, nil)
		assert.Equal(t, 401, unauth.status)

		audit := e.admin("GET", "/magic-sessionmanager/audit", nil)
		require.Equal(t, 200, audit.status, string(audit.raw))
		events := audit.body["data"].([]any)
		require.Len(t, events, 2)
		un, lock := events[0].(map[string]any), events[1].(map[string]any)
		assert.Equal(t, store.AuditLockoutUnlocked, un["event"])
		assert.Equal(t, "test", un["actor"], "the admin token's name")
		assert.Equal(t, "dave", un["subject"])
		assert.Equal(t, store.AuditLockoutLocked, lock["event"])
		assert.Equal(t, "system", lock["actor"])
		assert.Equal(t, float64(5), lock["detail"].(map[string]any)["failures"])

		// Four failures, then a success (registration with the identifier): the count starts over.
		for range 4 {
			e.fail("198.51.100.1", "erin")
		}
		reg := e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "5", Identifier: "Erin", Keys: []string{"sid:e1"}, IP: "198.51.100.1"})
		require.Equal(t, protocol.DecisionAllow, reg.body["decision"], string(reg.raw))
		for range 4 {
			assert.Equal(t, false, e.fail("198.51.100.1", "erin").body["locked"])
		}
		// A registration for a locked identifier (a login already on its way to
		// the app when the lock was set) is refused and its tokens revoked.
		assert.Equal(t, true, e.fail("198.51.100.1", "erin").body["locked"])
		reg = e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: "5", Identifier: "erin", Keys: []string{"sid:e2"}, IP: "203.0.113.1"})
		assert.Equal(t, protocol.DecisionDeny, reg.body["decision"])
		assert.Equal(t, protocol.ReasonLocked, reg.body["reason"])
	})
}

// TestLoginProtectionBadInput: identifiers that are huge, not strings or
// missing are counted under a bounded, normalised form; nothing answers 500.
func TestLoginProtectionBadInput(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		huge := strings.Repeat("A", 100_000)
		cases := []struct {
			name  string
			ident any
			value string // the normalised subject counted
		}{
			{"huge", huge, ""},
			{"number", 12345, "12345"},
			{"array", []string{"Alice"}, `["alice"]`},
			{"object", map[string]any{"$ne": 1}, `{"$ne":1}`},
			{"missing", nil, ""},
			{"bad utf-8", "b\xffob", "b\uFFFDob"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ip := "198.51.100.77"
				var last resp
				for range 5 {
					last = e.fail(ip, c.ident)
					require.Equal(t, 200, last.status, string(last.raw))
				}
				assert.Equal(t, true, last.body["locked"])
				list, err := e.st.ListLockouts(t.Context(), e.clock.Now(), 100)
				require.NoError(t, err)
				found := false
				for _, l := range list {
					assert.LessOrEqual(t, len(l.Subject), 128)
					if c.value != "" && l.Subject == c.value || c.name == "huge" && strings.HasPrefix(l.Subject, "aaaa") && strings.Contains(l.Subject, "#") ||
						c.name == "missing" && l.Subject == "" {
						found = true
						_, err := e.st.Unlock(t.Context(), l.Scope, e.clock.Now(), nil, nil)
						require.NoError(t, err)
					}
				}
				assert.True(t, found, "%s counted under its normalised form: %+v", c.name, list)
			})
		}
		// A body that is not the wire type, or an ip that is not one: 400, not 500.
		for _, body := range []string{`{"ip":"198.51.100.1","identifier":"x","extra":1}`, `{"ip":"nope","identifier":"x"}`, `[1,2]`, `{"ip":5}`} {
			for _, path := range []string{protocol.PathFailed, protocol.PathLoginCheck} {
				r := e.internal("POST", path, body)
				assert.Equal(t, 400, r.status, "%s %s: %s", path, body, r.raw)
			}
		}
		r := e.internal("POST", protocol.PathLoginCheck, map[string]any{"ip": "", "identifier": huge})
		assert.Equal(t, 200, r.status, "no address: the identifier alone is checked")
	})
}

// TestLockoutSettingsValidated: the new settings keys are validated.
func TestLockoutSettingsValidated(t *testing.T) {
	e := newEnv(t)
	r := e.admin("PUT", "/magic-sessionmanager/settings", map[string]any{"ipMaxFailedLogins": -1})
	assert.Equal(t, 400, r.status, string(r.raw))
	def := settings.Defaults(15 * time.Minute)
	assert.Equal(t, 50, def.IPMaxFailedLogins)
	assert.Equal(t, 5, def.MaxFailedLogins)
}
