package filter_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// countingApp is a login app that counts the requests that reached it.
func countingApp(n *atomic.Int64, status int) func([][2]string, []byte) (int, [][2]string, []byte) {
	app := loginApp(userToken(11, "s-11"), "r", status)
	return func(h [][2]string, b []byte) (int, [][2]string, []byte) {
		n.Add(1)
		return app(h, b)
	}
}

func loginReq(body string, contentType string, app func([][2]string, []byte) (int, [][2]string, []byte)) request {
	r := request{method: "POST", path: "/api/auth/local", worker: -1, app: app,
		headers: [][2]string{{"user-agent", "TestAgent/1.0"}}}
	if contentType != "" {
		r.headers = append(r.headers, [2]string{"content-type", contentType})
	}
	if body != "" {
		r.body = []byte(body)
	}
	return r
}

// TestLockedLoginNeverReachesTheApp: while sessionsvc says locked, the
// right and the wrong password get byte-identical 429 answers and the app
// receives neither.
func TestLockedLoginNeverReachesTheApp(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		stub := newStub(t)
		stub.set(func(s *stubSvc) {
			s.checkAnswer = protocol.LoginCheckResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonLocked,
				Message: "Too many requests. Please try again later.", RetryAfter: 900}
		})
		h := mustStart(t, start, testConfig(""), stub.clusters())
		var reached atomic.Int64
		right := h.do(t, loginReq(`{"identifier":"Alice@example.com","password":"alice-password"}`, "application/json", countingApp(&reached, 200)))
		wrong := h.do(t, loginReq(`{"identifier":"Alice@example.com","password":"wrong"}`, "application/json", countingApp(&reached, 400)))
		assert.Zero(t, reached.Load(), "the app never receives a locked login")
		for _, r := range []response{right, wrong} {
			require.True(t, r.local)
			assert.Equal(t, 429, r.status)
			assert.Equal(t, "900", r.header("retry-after"))
			assert.Equal(t, protocol.ReasonLocked, r.header("x-session-terminated-reason"))
			assert.Equal(t, "no-store", r.header("cache-control"))
		}
		assert.JSONEq(t, `{"data":null,"error":{"status":429,"name":"TooManyRequestsError","message":"Too many requests. Please try again later.","details":{"reason":"locked","retryAfter":900}}}`, string(right.body))
		assert.Equal(t, right.status, wrong.status)
		assert.Equal(t, right.headers, wrong.headers, "byte-identical headers")
		assert.Equal(t, right.body, wrong.body, "byte-identical bodies")
		rec := stub.recorded()
		require.Len(t, rec.checks, 2)
		assert.Equal(t, protocol.LoginCheck{IP: "203.0.113.9", Identifier: "Alice@example.com", UserAgent: "TestAgent/1.0"}, rec.checks[0])
		assert.Empty(t, rec.register)
		assert.Empty(t, rec.failed, "a refused login is not a failure the app decided")
		assert.Equal(t, int64(2), h.counter("meshsession_requests_refused_locked"))
	})
}

// TestLoginCheckPolicyAndPass: a policy denial is a 403 before the app; an
// allowed login reaches the app, and its success and failure reports name
// the identifier the check counted.
func TestLoginCheckPolicyAndPass(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		var reached atomic.Int64

		stub.set(func(s *stubSvc) {
			s.checkAnswer = protocol.LoginCheckResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonPolicy,
				Message: "Logins through Tor are not allowed."}
		})
		r := h.do(t, loginReq(`{"identifier":"bob","password":"pw"}`, "application/json", countingApp(&reached, 200)))
		require.True(t, r.local)
		assert.Equal(t, 403, r.status)
		assert.Equal(t, protocol.ReasonPolicy, errorReason(t, r))
		assert.Contains(t, string(r.body), "Tor")
		assert.Zero(t, reached.Load())

		stub.set(func(s *stubSvc) { s.checkAnswer = protocol.LoginCheckResponse{Decision: protocol.DecisionAllow} })
		r = h.do(t, loginReq(`{"identifier":"bob","password":"pw"}`, "application/json", countingApp(&reached, 200)))
		assert.False(t, r.local)
		assert.Equal(t, 200, r.status)
		assert.Equal(t, int64(1), reached.Load())
		rec := stub.recorded()
		require.Len(t, rec.register, 1)
		assert.Equal(t, "bob", rec.register[0].Identifier, "a success names the identifier (its counter resets)")

		// A form body and a non-string identifier are read as the app would see them.
		r = h.do(t, loginReq(`identifier=Carol%40example.com&password=x`, "application/x-www-form-urlencoded", countingApp(&reached, 400)))
		assert.Equal(t, 400, r.status)
		r = h.do(t, loginReq(`{"identifier":["dave"],"password":"x"}`, "application/json", countingApp(&reached, 400)))
		assert.Equal(t, 400, r.status)
		rec = stub.recorded()
		require.Len(t, rec.checks, 4)
		assert.Equal(t, "Carol@example.com", rec.checks[2].Identifier)
		assert.Equal(t, `["dave"]`, rec.checks[3].Identifier)
		require.Len(t, rec.failed, 2)
		assert.Equal(t, rec.checks[2].Identifier, rec.failed[0].Identifier, "the failure counts what the check checked")
		assert.Equal(t, rec.checks[3].Identifier, rec.failed[1].Identifier)

		// No body: decided on the headers (identifier missing).
		stub.set(func(s *stubSvc) {
			s.checkAnswer = protocol.LoginCheckResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonLocked, RetryAfter: 5}
		})
		before := reached.Load()
		r = h.do(t, loginReq("", "", countingApp(&reached, 400)))
		require.True(t, r.local)
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "5", r.header("retry-after"))
		assert.Equal(t, before, reached.Load())
		rec = stub.recorded()
		assert.Equal(t, "", rec.checks[len(rec.checks)-1].Identifier)

		// A huge identifier is bounded before it is sent.
		stub.set(func(s *stubSvc) { s.checkAnswer = protocol.LoginCheckResponse{Decision: protocol.DecisionAllow} })
		h.do(t, loginReq(`{"identifier":"`+strings.Repeat("é", 5000)+`","password":"x"}`, "application/json", countingApp(&reached, 400)))
		rec = stub.recorded()
		last := rec.checks[len(rec.checks)-1].Identifier
		assert.LessOrEqual(t, len(last), 1024)
		assert.True(t, strings.HasPrefix(last, "éé"))
	})
}

// TestLoginCheckUnavailable: sessionsvc unreachable or failing follows
// login_unavailable_policy; a sessionsvc without the check (404) lets the
// login through.
func TestLoginCheckUnavailable(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		for _, tc := range []struct {
			policy string
			status int // the check's answer
			pass   bool
		}{
			{"allow", 503, true}, {"deny", 503, false}, {"deny", 404, true}, {"deny", 500, false}, {"allow", 500, true},
		} {
			stub := newStub(t)
			stub.set(func(s *stubSvc) { s.checkStatus = tc.status })
			h := mustStart(t, start, testConfig(`"login_unavailable_policy":"`+tc.policy+`"`), stub.clusters())
			var reached atomic.Int64
			r := h.do(t, loginReq(`{"identifier":"a","password":"b"}`, "application/json", countingApp(&reached, 400)))
			if tc.pass {
				assert.False(t, r.local, "%+v", tc)
				assert.Equal(t, int64(1), reached.Load(), "%+v", tc)
			} else {
				require.True(t, r.local, "%+v", tc)
				assert.Equal(t, 503, r.status, "%+v", tc)
				assert.Zero(t, reached.Load(), "%+v", tc)
			}
			h.close()
		}
	})
}

// TestLoginBodyTooLarge: a login body past the read limit is refused
// (an identifier the check cannot read must not reach the app).
func TestLoginBodyTooLarge(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(""))
		var reached atomic.Int64
		big := `{"identifier":"x","password":"` + strings.Repeat("a", 1<<20) + `"}`
		r := h.do(t, loginReq(big, "application/json", countingApp(&reached, 200)))
		require.True(t, r.local)
		assert.Equal(t, 413, r.status)
		assert.Zero(t, reached.Load())
	})
}

// TestWithTrailersRefused: trailers would release a held login or refresh
// body before its check; such a request is refused (native: the wasm
// harness sends no trailers).
func TestWithTrailersRefused(t *testing.T) {
	stub := newStub(t)
	hn, err := startNative(testConfig(""), stub.clusters())
	require.NoError(t, err)
	defer hn.close()
	n := hn.(*nativeHarness)
	for path, body := range map[string]string{
		"/api/auth/local":   `{"identifier":"a","password":"b"}`,
		"/api/auth/refresh": `{"refreshToken":"rt"}`,
	} {
		id := n.host.InitializeHttpContext()
		n.host.CallOnRequestHeaders(id, [][2]string{{":method", "POST"}, {":path", path}, {":authority", "a"}}, false)
		assert.Equal(t, types.ActionPause, n.host.CallOnRequestBody(id, []byte(body), false), path)
		assert.Equal(t, types.ActionPause, n.host.CallOnRequestTrailers(id, [][2]string{{"x-t", "1"}}), path)
		lr := n.host.GetSentLocalResponse(id)
		require.NotNil(t, lr, path)
		assert.Equal(t, uint32(400), lr.StatusCode, path)
		n.host.CompleteHttpContext(id)
	}
	assert.Empty(t, stub.recorded().checks)

	// Other routes pass their trailers.
	id2 := n.host.InitializeHttpContext()
	defer n.host.CompleteHttpContext(id2)
	n.host.CallOnRequestHeaders(id2, [][2]string{{":method", "POST"}, {":path", "/api/other"}, {":authority", "a"}}, false)
	assert.Equal(t, types.ActionContinue, n.host.CallOnRequestTrailers(id2, [][2]string{{"x-t", "1"}}))
}
