package filter_test

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

const workers = 4

func testConfig(extra string) string {
	cfg := `{"cluster":"sessionsvc","internal_key":"` + testKey + `","verify":{"mode":"hs256","secret":"` + testSecret + `"},"sync_interval":"100ms"`
	if extra != "" {
		cfg += "," + extra
	}
	return cfg + "}"
}

func get(path string, hdrs [][2]string, worker int) request {
	return request{method: "GET", path: path, headers: hdrs, worker: worker}
}

func errorReason(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Error struct {
			Status  int    `json:"status"`
			Name    string `json:"name"`
			Message string `json:"message"`
			Details struct {
				Reason string `json:"reason"`
			} `json:"details"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body), "refusal body is JSON: %s", r.body)
	require.Equal(t, r.status, body.Error.Status)
	require.NotEmpty(t, body.Error.Name)
	require.NotEmpty(t, body.Error.Message)
	require.Equal(t, body.Error.Details.Reason, r.header("x-session-terminated-reason"))
	return body.Error.Details.Reason
}

func TestStartRefusesBadConfiguration(t *testing.T) {
	cases := []struct{ name, cfg, want string }{
		{"not json", `{"cluster":`, "config"},
		{"unknown field", `{"clustr":"x"}`, "clustr"},
		{"wrong type", `{"sync_interval":5}`, "sync_interval"},
		{"bad duration", `{"last_seen_interval":"soon"}`, "last_seen_interval"},
		{"bad mode", `{"verify":{"mode":"md5"}}`, "verify.mode"},
		{"hs256 without secret", `{"verify":{"mode":"hs256"}}`, "verify.secret"},
		{"bad stale policy", `{"stale_policy":"maybe"}`, "stale_policy"},
	}
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h, err := start(tc.cfg, nil)
				if h != nil {
					h.close()
				}
				require.Error(t, err)
				assert.Contains(t, err.Error(), "invalid plugin configuration")
				assert.Contains(t, err.Error(), tc.want)
			})
		}
	})
}

func TestPassInjectsIdentityAndStripsClientHeaders(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		forged := append(bearer(userToken(42, "s-42")), [2]string{"x-user-id", "1"}, [2]string{"x-session-id", "forged"})
		r := h.do(t, get("/api/articles", forged, -1))
		require.False(t, r.local, "passed: %s", r.body)
		require.Equal(t, 200, r.status)
		uid, _ := r.upstreamHeader("x-user-id")
		sid, _ := r.upstreamHeader("x-session-id")
		assert.Equal(t, "42", uid)
		assert.Equal(t, "s-42", sid)

		// Without a token: passed, and client-sent identity headers removed.
		r = h.do(t, get("/api/articles", [][2]string{{"x-user-id", "1"}}, -1))
		require.False(t, r.local)
		_, ok := r.upstreamHeader("x-user-id")
		assert.False(t, ok, "client identity header must not reach the app")
	})
}

func TestRevocationReachesEveryWorker(t *testing.T) {
	for _, format := range []string{"binary", "json"} {
		t.Run(format, func(t *testing.T) { testRevocationReachesEveryWorker(t, format == "json") })
	}
}

// testRevocationReachesEveryWorker runs with a sessionsvc that answers the
// sync feed in binary (as asked) or in JSON (as an older one does).
func testRevocationReachesEveryWorker(t *testing.T, jsonOnly bool) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		stub := newStub(t)
		stub.jsonOnly = jsonOnly
		h := mustStart(t, start, testConfig(""), stub.clusters())
		h.tickAll(t)
		tok := userToken(7, "s-7")
		everyWorkerPasses(t, h, tok)
		syncsBefore := stub.count(protocol.PathSync)
		stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:s-7", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
		nextSync(t, h)
		everyWorkerRefuses(t, h, tok, protocol.ReasonManual, "revoked")
		// One poll per proxy per interval, not one per worker.
		assert.LessOrEqual(t, stub.count(protocol.PathSync)-syncsBefore, 2, "sync polls for 2 tick rounds")
		// Another session of the same user is unaffected.
		assert.False(t, h.do(t, get("/api/articles", bearer(userToken(7, "s-8")), -1)).local)
		assert.GreaterOrEqual(t, h.counter("meshsession_requests_refused_manual"), int64(h.workers()))
	})
}

func TestBlockedUserAndNotBefore(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		cut := time.Now().Unix()
		old := jwt(map[string]any{"id": 8, "iat": cut - 100, "exp": cut + 3600})
		fresh := jwt(map[string]any{"id": 8, "iat": cut + 1, "exp": cut + 3600})
		stub.add(protocol.Change{Op: protocol.OpBlock, User: "9", Reason: protocol.ReasonBlocked})
		stub.add(protocol.Change{Op: protocol.OpNotBefore, User: "8", At: cut, Exp: cut + 7200})
		h.tickAll(t)
		h.tickAll(t)

		r := h.do(t, get("/api/anything", bearer(userToken(9, "")), -1))
		require.True(t, r.local)
		assert.Equal(t, 401, r.status, "a blocked user's token: 401, as the Strapi plugin")
		assert.Equal(t, protocol.ReasonBlocked, errorReason(t, r))

		r = h.do(t, get("/api/articles", bearer(old), -1))
		require.True(t, r.local)
		assert.Equal(t, 401, r.status)
		assert.Equal(t, protocol.ReasonNotBefore, errorReason(t, r))
		assert.False(t, h.do(t, get("/api/articles", bearer(fresh), -1)).local, "tokens issued after not-before pass")

		stub.add(protocol.Change{Op: protocol.OpUnblock, User: "9"})
		nextSync(t, h)
		assert.False(t, h.do(t, get("/api/anything", bearer(userToken(9, "")), -1)).local, "unblocked")
	})
}

// TestLastSeenThrottledAcrossWorkers: one activity report per session per
// interval across workers, each carrying what sessionsvc needs to register
// a session it does not know.
func TestLastSeenThrottledAcrossWorkers(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"last_seen_interval":"1h"`))
		h.tickAll(t) // the first sync: no start-up hold below
		tokA, tokB := userToken(1, "a"), userToken(2, "")
		ua := [2]string{"user-agent", "Discover/1.0"}
		for i := 0; i < 3; i++ {
			for w := 0; w < h.workers(); w++ {
				require.False(t, h.do(t, get("/api/x", append(bearer(tokA), ua), w)).local)
				require.False(t, h.do(t, get("/api/x", append(bearer(tokB), ua), w)).local)
			}
		}
		h.tickAll(t)
		h.tickAll(t)
		rec := stub.recorded()
		keys := map[string]int{}
		for _, a := range rec.activity {
			keys[a.Key]++
			assert.NotZero(t, a.At)
			assert.Equal(t, "203.0.113.9", a.IP)
			assert.Equal(t, "Discover/1.0", a.UserAgent)
			assert.NotZero(t, a.Exp)
			assert.NotEmpty(t, a.User)
			if a.Key == "sid:a" {
				assert.Equal(t, []string{"sid:a", token.FingerprintKey(tokA)}, a.Keys)
			} else {
				assert.Equal(t, []string{a.Key}, a.Keys)
			}
		}
		assert.Equal(t, 1, keys["sid:a"], "one mark per session per interval across workers: %v", rec.activity)
		assert.Equal(t, 1, keys[token.FingerprintKey(tokB)], "a token without sid is tracked by fingerprint")
		assert.Len(t, keys, 2)
	})
}

// TestEpochChangeKeepsSeenRevocations: sessionsvc's store was reset (a
// new epoch with an empty log). The workers take the new epoch's
// snapshot but keep the revocations they had seen until they expire
// (counted); an explicit lift in the new epoch's feed is honoured.
func TestEpochChangeKeepsSeenRevocations(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		tok, other := userToken(3, "s-3"), userToken(3, "s-4")
		stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:s-3", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
		stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:s-4", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
		h.tickAll(t)
		h.tickAll(t)
		require.True(t, h.do(t, get("/api/x", bearer(tok), -1)).local)

		stub.set(func(s *stubSvc) { s.epoch, s.log = "epoch-2", nil })
		nextSync(t, h)
		everyWorkerRefuses(t, h, tok, protocol.ReasonManual, "kept across the store reset")
		assert.EqualValues(t, 2, h.counter("meshsession_revocations_kept"), "counted once per proxy")
		assert.Contains(t, h.logs(), "lacks 2 revoked keys")

		// An admin lifts one explicitly in the new epoch.
		stub.add(protocol.Change{Op: protocol.OpUnrevoke, Key: "sid:s-3"})
		nextSync(t, h)
		for w := 0; w < h.workers(); w++ {
			assert.False(t, h.do(t, get("/api/x", bearer(tok), w)).local, "worker %d honours the unrevoke", w)
			assert.True(t, h.do(t, get("/api/x", bearer(other), w)).local, "worker %d keeps the other one", w)
		}
	})
}

func TestMultiPageSnapshotAndExpiry(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"sync_page_size":3`))
		now := time.Now().Unix()
		for i := 0; i < 10; i++ {
			stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:p" + strconv.Itoa(i), Exp: now + 3600, Reason: protocol.ReasonIdle})
		}
		stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:gone", Exp: now - 3600, Reason: protocol.ReasonIdle})
		h.tickAll(t)
		h.tickAll(t)
		for i := 0; i < 10; i++ {
			r := h.do(t, get("/api/x", bearer(userToken(5, "p"+strconv.Itoa(i))), -1))
			require.True(t, r.local, "p%d", i)
			assert.Equal(t, protocol.ReasonIdle, errorReason(t, r))
		}
		assert.False(t, h.do(t, get("/api/x", bearer(userToken(5, "gone")), -1)).local, "expired entries are not enforced")
	})
}

func TestSessionsvcDownKeepsEnforcingThenStalePolicy(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		for _, policy := range []string{"fail_open", "fail_closed"} {
			t.Run(policy, func(t *testing.T) {
				h, stub := startStubbed(t, start, testConfig(`"max_staleness":"300ms","stale_policy":"`+policy+`"`))
				stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:dead", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
				h.tickAll(t)
				h.tickAll(t)
				stub.set(func(s *stubSvc) { s.down = true })
				h.advance(350 * time.Millisecond)
				h.tickAll(t)

				r := h.do(t, get("/api/x", bearer(userToken(1, "dead")), -1))
				require.True(t, r.local)
				if policy == "fail_open" {
					assert.Equal(t, protocol.ReasonManual, errorReason(t, r), "cached revocations stay enforced")
					assert.False(t, h.do(t, get("/api/x", bearer(userToken(1, "alive")), -1)).local)
				} else {
					assert.Equal(t, 503, r.status)
					assert.Equal(t, "stale", errorReason(t, r))
					alive := h.do(t, get("/api/x", bearer(userToken(1, "alive")), -1))
					assert.Equal(t, 503, alive.status)
				}
				assert.NotZero(t, h.counter("meshsession_sync_failure"))
				assert.Contains(t, h.logs(), "sync failed")

				// Recovery: the next sync catches up from the cursor.
				stub.set(func(s *stubSvc) { s.down = false })
				stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:later", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
				deadline := time.Now().Add(5 * time.Second)
				for {
					h.tickAll(t)
					if r := h.do(t, get("/api/x", bearer(userToken(1, "later")), -1)); r.local && r.status == 401 {
						assert.Equal(t, protocol.ReasonManual, errorReason(t, r))
						break
					}
					require.True(t, time.Now().Before(deadline), "caught up after sessionsvc came back")
					h.advance(50 * time.Millisecond)
				}
				assert.False(t, h.do(t, get("/api/x", bearer(userToken(1, "alive")), -1)).local, "fresh again")
			})
		}
	})
}

func TestBadFeedPageIsRejectedWhole(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:one", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
		h.tickAll(t)
		h.tickAll(t)
		for _, garbage := range []string{
			`not json`,
			`{"epoch":"epoch-1","cursor":3,"changes":[{"seq":2,"op":"revoke","key":"sid:two","exp":9999999999},{"seq":3,"op":"explode"}]}`,
			`{"epoch":"epoch-1","cursor":3,"changes":[{"seq":3,"op":"revoke","key":"sid:two","exp":9999999999},{"seq":2,"op":"revoke","key":"sid:three"}]}`,
		} {
			stub.set(func(s *stubSvc) { s.garbage = garbage })
			nextSync(t, h)
			assert.True(t, h.do(t, get("/api/x", bearer(userToken(1, "one")), -1)).local, "earlier state kept")
			assert.False(t, h.do(t, get("/api/x", bearer(userToken(1, "two")), -1)).local, "no half-applied page")
		}
		assert.Contains(t, h.logs(), "sync page rejected")
	})
}

func TestMalformedTokensAreRefusedNeverTrap(t *testing.T) {
	big := strings.Repeat("a", 64<<10)
	valid := userToken(1, "x")
	parts := strings.Split(valid, ".")
	cases := map[string]string{
		"not a jwt":        "Bearer abc",
		"two parts":        "Bearer a.b",
		"bad base64":       "Bearer " + parts[0] + ".!!!." + parts[2],
		"payload not json": "Bearer " + parts[0] + ".bm90IGpzb24." + parts[2],
		"bad signature":    "Bearer " + parts[0] + "." + parts[1] + ".AAAA",
		"alg none":         "Bearer eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"64 KiB header":    "Bearer " + big,
	}
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(""))
		h.tickAll(t) // the first sync: no start-up hold below
		for name, auth := range cases {
			r := h.do(t, get("/api/x", [][2]string{{"authorization", auth}}, -1))
			require.True(t, r.local, name)
			assert.Equal(t, 401, r.status, name)
			assert.Equal(t, "invalid_token", errorReason(t, r), name)
		}
		// Still alive and deciding.
		assert.False(t, h.do(t, get("/api/x", bearer(valid), -1)).local)
	})
}

func loginApp(jwtTok, refresh string, status int) func([][2]string, []byte) (int, [][2]string, []byte) {
	return func([][2]string, []byte) (int, [][2]string, []byte) {
		if status != 200 {
			return status, [][2]string{{"content-type", "application/json"}}, []byte(`{"data":null,"error":{"status":400,"name":"ValidationError","message":"Invalid identifier or password"}}`)
		}
		b, _ := json.Marshal(map[string]any{"jwt": jwtTok, "refreshToken": refresh, "user": map[string]any{"id": 11, "username": "alice"}})
		return 200, [][2]string{{"content-type", "application/json"}}, b
	}
}

func TestLoginIsRegisteredOrDenied(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		tok, refresh := userToken(11, "s-11"), "opaque-refresh-1"
		login := request{method: "POST", path: "/api/auth/local", worker: -1,
			headers: [][2]string{{"content-type", "application/json"}, {"user-agent", "TestAgent/1.0"}, {"accept-language", "de-DE,de;q=0.9"}},
			body:    []byte(`{"identifier":"alice@example.com","password":"pw"}`),
			app:     loginApp(tok, refresh, 200)}
		r := h.do(t, login)
		require.False(t, r.local, "%s", r.body)
		assert.Contains(t, string(r.body), tok)
		rec := stub.recorded()
		require.Len(t, rec.register, 1, h.logs())
		reg := rec.register[0]
		assert.Equal(t, "11", reg.UserID)
		assert.Contains(t, reg.Keys, "sid:s-11")
		assert.Contains(t, reg.Keys, token.FingerprintKey(tok))
		assert.Equal(t, []string{token.FingerprintKey(refresh)}, reg.RefreshKeys)
		assert.Equal(t, "203.0.113.9", reg.IP)
		assert.Equal(t, "TestAgent/1.0", reg.UserAgent)
		assert.Equal(t, "de-DE", reg.Locale)
		assert.NotZero(t, reg.ExpiresAt)

		stub.set(func(s *stubSvc) {
			s.registerAnswer = protocol.RegisterResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonPolicy, Message: "Logins from your country are blocked"}
		})
		r = h.do(t, login)
		require.True(t, r.refused())
		assert.NotContains(t, string(r.body), tok, "the token never reaches the client")
		if r.local { // the SDK's emulator records the local reply
			assert.Equal(t, 403, r.status)
			assert.Equal(t, protocol.ReasonPolicy, errorReason(t, r))
			assert.Contains(t, string(r.body), "country")
		} else { // Envoy's default: the headers went out, the stream is reset
			assert.Empty(t, r.body)
		}

		// A refused login is reported for lockout counting.
		failed := login
		failed.app = loginApp("", "", 400)
		r = h.do(t, failed)
		assert.Equal(t, 400, r.status)
		rec = stub.recorded()
		require.Len(t, rec.failed, 1)
		assert.Equal(t, "alice@example.com", rec.failed[0].Identifier)
	})
}

func TestLoginWhenSessionsvcIsDown(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		for _, policy := range []string{"allow", "deny"} {
			t.Run(policy, func(t *testing.T) {
				stub := newStub(t)
				stub.set(func(s *stubSvc) { s.down = true })
				h := mustStart(t, start, testConfig(`"login_unavailable_policy":"`+policy+`"`), stub.clusters())
				r := h.do(t, request{method: "POST", path: "/api/auth/local", worker: -1, body: []byte(`{"identifier":"a","password":"b"}`),
					app: loginApp(userToken(1, "z"), "", 200)})
				if policy == "allow" {
					assert.False(t, r.local)
					assert.Equal(t, 200, r.status)
				} else {
					require.True(t, r.refused())
					assert.NotContains(t, string(r.body), "jwt")
					if r.local {
						assert.Equal(t, 503, r.status)
					}
				}
			})
		}
	})
}

func TestRefreshOfEndedSessionRefused(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		refused := refreshOfRevoked(t, start, testConfig(""))
		const form, multi = "application/x-www-form-urlencoded", "multipart/form-data; boundary=B"
		for _, tc := range []struct{ name, path, body, ct string }{
			{"repeated key", "/api/auth/refresh", `{"refreshToken":"decoy","refreshToken":"rt-old"}`, ""},
			{"repeated key, revoked first", "/api/auth/refresh", `{"refreshToken":"rt-old","refreshToken":"decoy"}`, ""},
			{"trailing slash", "/api/auth/refresh/", `{"refreshToken":"rt-old"}`, ""},
			{"case", "/API/Auth/Refresh", `{"refreshToken":"rt-old"}`, ""},
			{"encoded letter", "/api/auth/re%66resh", `{"refreshToken":"rt-old"}`, ""},
			{"form", "/api/auth/refresh", `refreshToken=rt%2Dold`, form},
			{"json text sent as a form", "/api/auth/refresh", `["x","&refreshToken=rt-old&",1]`, form},
			{"multipart", "/api/auth/refresh", "--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n", multi},
		} {
			var headers [][2]string
			if tc.ct != "" {
				headers = [][2]string{{"content-type", tc.ct}}
			}
			r := refused(t, tc.name, tc.path, headers, []byte(tc.body))
			assert.Equal(t, 401, r.status, tc.name)
			assert.Equal(t, protocol.ReasonManual, errorReason(t, r), tc.name)
		}
		big := `{"refreshToken":"rt-old","pad":"` + strings.Repeat("a", 1<<20) + `"}`
		r := refused(t, "a body too large", "/api/auth/refresh", nil, []byte(big))
		assert.Equal(t, 413, r.status, "a body the filter cannot read is refused")
	})
}

func TestLogoutRevokesBeforeTheAppAnswers(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		tok := userToken(6, "s-6")
		r := h.do(t, request{method: "POST", path: "/api/auth/logout", headers: bearer(tok), worker: -1})
		require.False(t, r.local)
		rec := stub.recorded()
		require.Len(t, rec.revoke, 1)
		assert.ElementsMatch(t, []string{"sid:s-6", token.FingerprintKey(tok)}, rec.revoke[0].Keys)
		assert.Equal(t, protocol.ReasonLogout, rec.revoke[0].Reason)
		h.tickAll(t)
		h.tickAll(t)
		everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "logged out")
	})
}

func TestSkipPathsAndRequireToken(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(`"require_token":true,"skip_paths":["/healthz","/public/"]`))
		assert.False(t, h.do(t, get("/healthz", nil, -1)).local)
		assert.False(t, h.do(t, get("/public/logo.png", [][2]string{{"authorization", "Bearer junk"}}, -1)).local)
		r := h.do(t, get("/api/x", nil, -1))
		require.True(t, r.local)
		assert.Equal(t, 401, r.status)
		assert.Equal(t, "missing_token", errorReason(t, r))
	})
}

// TestWorkersAdoptDeltaPages: after the first (full) state, a small change
// is published as its delta page, and the other workers apply it.
func TestWorkersAdoptDeltaPages(t *testing.T) {
	module, cache := pluginWasm(t)
	stub := newStub(t)
	hh, err := startWasm(module, cache, 3, testConfig(""), stub.clusters())
	require.NoError(t, err)
	defer hh.close()
	h := hh.(*wasmHarness)
	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:first", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
	h.tickAll(t)
	h.tickAll(t)
	shared := h.h.SharedData("meshsession")
	full, _, st := shared.Get("meshsession.g4.state.full")
	require.Equal(t, host.StatusOK, st, "the first state is published whole")

	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:second", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonIdle})
	nextSync(t, h)
	v, _, st := shared.Get("meshsession.g4.state.version")
	require.Equal(t, host.StatusOK, st)
	vs, _, _ := strings.Cut(string(v), "/") // "<version>/<cursor>/<epoch>"
	ver, err := strconv.ParseUint(vs, 10, 64)
	require.NoError(t, err)
	delta, _, st := shared.Get("meshsession.g4.delta." + strconv.FormatUint(ver%64, 10))
	require.Equal(t, host.StatusOK, st, "the change went out as a delta page")
	assert.True(t, strings.HasPrefix(string(delta), vs+"\n1\n"), "version, then the cursor it applies to: %q", delta)
	assert.Contains(t, string(delta), string(binary.LittleEndian.AppendUint64(nil, protocol.KeyHash("sid:second"))), "the binary page names the key by its hash")
	full2, _, _ := shared.Get("meshsession.g4.state.full")
	assert.Equal(t, string(full), string(full2), "no full state for a small change")
	for w := 0; w < h.workers(); w++ {
		r := h.do(t, get("/api/x", bearer(userToken(1, "second")), w))
		require.True(t, r.local, "worker %d applied the delta", w)
		assert.Equal(t, protocol.ReasonIdle, errorReason(t, r))
		assert.True(t, h.do(t, get("/api/x", bearer(userToken(1, "first")), w)).local)
	}
}

// TestActivityKeptWhileSessionsvcIsDown: a batch sessionsvc cannot take is
// resent once it is back (it was dropped: sessions used during an outage
// were ended as idle afterwards), and only once.
func TestActivityKeptWhileSessionsvcIsDown(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"last_seen_interval":"1h"`))
		h.tickAll(t) // the first sync: no start-up hold below
		stub.set(func(s *stubSvc) { s.down = true })
		require.False(t, h.do(t, get("/api/x", bearer(userToken(1, "down-a")), 0)).local)
		h.tickAll(t)
		h.tickAll(t)
		assert.Empty(t, stub.recorded().activity, "sessionsvc is down")
		stub.set(func(s *stubSvc) { s.down = false })
		for range 4 {
			h.tickAll(t)
		}
		n := 0
		for _, a := range stub.recorded().activity {
			if a.Key == "sid:down-a" {
				n++
			}
		}
		assert.Equal(t, 1, n, "the kept batch was resent once sessionsvc was back: %v", stub.recorded().activity)
	})
}
