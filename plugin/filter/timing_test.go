package filter_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// startWasmHost starts plugin.wasm on `n` workers without ticks (the test
// ticks) and returns the harness.
func startWasmHost(t *testing.T, n int, cfg string, clusters map[string]string) *wasmHarness {
	t.Helper()
	module, cache := pluginWasm(t)
	hh, err := startWasm(module, cache, n, cfg, clusters)
	require.NoError(t, err)
	t.Cleanup(hh.close)
	return hh.(*wasmHarness)
}

// TestRefusalIsMonotoneAcrossWorkers: once one worker refused a token as
// revoked, every other worker of the proxy refuses it on its very next
// request, before any tick of its own.
func TestRefusalIsMonotoneAcrossWorkers(t *testing.T) {
	stub := newStub(t)
	h := startWasmHost(t, workers, testConfig(""), stub.clusters())
	h.tickAll(t)
	for trial := 0; trial < 5; trial++ {
		tok := userToken(70+trial, "mono-"+strconv.Itoa(trial))
		for w := 0; w < workers; w++ {
			require.False(t, h.do(t, get("/api/x", bearer(tok), w)).local)
		}
		stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:mono-" + strconv.Itoa(trial), Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
		h.advance(110 * time.Millisecond) // past the lease's next fetch time
		fetcher := trial % workers
		require.NoError(t, h.h.Tick(fetcher)) // only this worker syncs
		h.settle(t)
		r := h.do(t, get("/api/x", bearer(tok), fetcher))
		require.True(t, r.local, "trial %d: the fetching worker refuses", trial)
		for w := 0; w < workers; w++ {
			r := h.do(t, get("/api/x", bearer(tok), w))
			require.True(t, r.local, "trial %d: worker %d accepted a token worker %d refused", trial, w, fetcher)
			assert.Equal(t, protocol.ReasonManual, errorReason(t, r))
		}
	}
}

// TestLogoutIsImmediateOnEveryWorker: once the client has the logout's
// answer, no worker of the proxy accepts the token, without any tick.
func TestLogoutIsImmediateOnEveryWorker(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		for i := 0; i < 3; i++ {
			tok := userToken(80+i, "out-"+strconv.Itoa(i))
			everyWorkerPasses(t, h, tok)
			syncs := stub.count(protocol.PathSync)
			r := h.do(t, request{method: "POST", path: "/api/auth/logout", headers: bearer(tok), worker: i % h.workers()})
			require.False(t, r.local, "the logout reaches the app: %s", r.body)
			require.Equal(t, 200, r.status)
			assert.Greater(t, stub.count(protocol.PathSync), syncs, "a sync after the revoke, before the app")
			everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "logout "+strconv.Itoa(i))
		}
		assert.GreaterOrEqual(t, h.counter("meshsession_syncs_on_demand"), int64(3))
	})
}

// TestRevokingRoutesAreImmediateOnEveryWorker: the user API's logout,
// logout-all, logout-others and DELETE my-sessions/{id}, routed through
// the proxy to sessionsvc (here: the app answers as sessionsvc would,
// revoking first): once the client has a 2xx answer, no worker accepts
// what it revoked. A refused call (4xx) holds nothing.
func TestRevokingRoutesAreImmediateOnEveryWorker(t *testing.T) {
	const u = "/api/magic-sessionmanager"
	routes := []struct{ method, path string }{
		{"POST", u + "/logout"},
		{"POST", u + "/logout-all"},
		{"POST", u + "/logout-others"},
		{"DELETE", u + "/my-sessions/victim"},
	}
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		for i, rt := range routes {
			caller := userToken(90, "caller-"+strconv.Itoa(i))
			victim := userToken(90, "victim-"+strconv.Itoa(i))
			everyWorkerPasses(t, h, victim)
			// A 4xx answer: nothing is held, nothing fetched.
			syncs := stub.count(protocol.PathSync)
			r := h.do(t, request{method: rt.method, path: rt.path, headers: bearer(caller), worker: 0,
				app: func([][2]string, []byte) (int, [][2]string, []byte) {
					return 400, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"status":400}}`)
				}})
			require.Equal(t, 400, r.status)
			assert.Equal(t, syncs, stub.count(protocol.PathSync), "%s %s: no sync for a 4xx", rt.method, rt.path)

			r = h.do(t, request{method: rt.method, path: rt.path, headers: bearer(caller), worker: i % h.workers(),
				app: func([][2]string, []byte) (int, [][2]string, []byte) {
					// sessionsvc revokes, then answers
					stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:victim-" + strconv.Itoa(i), Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonLogout})
					return 200, [][2]string{{"content-type", "application/json"}}, []byte(`{"data":{"success":true}}`)
				}})
			require.False(t, r.local, "%s %s: %s", rt.method, rt.path, r.body)
			require.Equal(t, 200, r.status)
			assert.JSONEq(t, `{"data":{"success":true}}`, string(r.body), "the answer goes out unchanged")
			for w := 0; w < h.workers(); w++ {
				r := h.do(t, get("/api/x", bearer(victim), w))
				require.True(t, r.local, "%s %s: worker %d still accepts the revoked token", rt.method, rt.path, w)
			}
		}
	})
}

// waitStream waits for a held stream's outcome.
func waitStream(t *testing.T, s *host.Stream) host.Event {
	t.Helper()
	return waitFor(t, s, "the held stream was never decided", func(ev host.Event) bool {
		return ev.Kind == host.EventLocalResponse || ev.Kind == host.EventContinue && ev.Stream == host.StreamRequest
	})
}

func openStream(t *testing.T, h *wasmHarness, worker int, tok string) (*host.Stream, host.Result) {
	t.Helper()
	s, err := h.h.NewStream(worker)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Finish() })
	s.SetDownstream(clientAddr, "127.0.0.1:10000")
	res, err := s.RequestHeaders([][2]string{{":method", "GET"}, {":path", "/api/x"}, {":authority", "app"}, {":scheme", "http"},
		{"authorization", "Bearer " + tok}}, true)
	require.NoError(t, err)
	return s, res
}

// TestStartupHold: a freshly started proxy holds token-bearing requests
// until its workers have a state, so a token revoked before the start is
// refused from the first request; requests without a token are not held.
func TestStartupHold(t *testing.T) {
	stub := newStub(t)
	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:old", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
	h := startWasmHost(t, workers, testConfig(`"startup_hold":"30s"`), stub.clusters())
	revoked, valid := userToken(1, "old"), userToken(1, "new")

	sRevoked, res := openStream(t, h, 2, revoked)
	require.Nil(t, res.LocalResponse, "no state yet: held, not decided")
	require.Equal(t, host.ActionPause, res.Action)
	sValid, res := openStream(t, h, 3, valid)
	require.Equal(t, host.ActionPause, res.Action)
	r := h.do(t, get("/api/x", nil, 1))
	require.False(t, r.local, "no token: not held")

	require.NoError(t, h.h.Tick(0)) // worker 0 fetches the first state
	h.settle(t)
	// Workers 2 and 3 decide on their next tick (or request).
	require.NoError(t, h.h.Tick(2))
	require.NoError(t, h.h.Tick(3))
	ev := waitStream(t, sRevoked)
	require.Equal(t, host.EventLocalResponse, ev.Kind, "the revoked token is refused")
	assert.EqualValues(t, 401, ev.LocalResponse.Status)
	ev = waitStream(t, sValid)
	assert.Equal(t, host.EventContinue, ev.Kind, "the valid token passes")
	uid, _ := sValid.RequestHeader("x-user-id")
	assert.Equal(t, "1", uid, "decided in full: identity set")
	assert.EqualValues(t, 2, h.counter("meshsession_requests_held"))
	// A request on worker 1, which has not ticked, adopts at once.
	assert.True(t, h.do(t, get("/api/x", bearer(revoked), 1)).local)
}

// TestStartupHoldExpires: sessionsvc unreachable at start: a held request
// is decided by stale_policy once startup_hold has passed.
func TestStartupHoldExpires(t *testing.T) {
	for _, tc := range []struct {
		policy string
		status uint32 // 0: passed
	}{{"fail_closed", 503}, {"fail_open", 0}} {
		t.Run(tc.policy, func(t *testing.T) {
			stub := newStub(t)
			stub.set(func(s *stubSvc) { s.down = true })
			h := startWasmHost(t, 2, testConfig(`"startup_hold":"150ms","stale_policy":"`+tc.policy+`"`), stub.clusters())
			s, res := openStream(t, h, 1, userToken(1, "x"))
			require.Equal(t, host.ActionPause, res.Action)
			h.tickAll(t) // the sync fails; still held
			h.advance(160 * time.Millisecond)
			require.NoError(t, h.h.Tick(1))
			ev := waitStream(t, s)
			if tc.status == 0 {
				assert.Equal(t, host.EventContinue, ev.Kind)
			} else {
				require.Equal(t, host.EventLocalResponse, ev.Kind)
				assert.Equal(t, tc.status, ev.LocalResponse.Status)
			}
			assert.EqualValues(t, 1, h.counter("meshsession_requests_hold_expired"))
			// Past the hold, requests are not held any more.
			_, res = openStream(t, h, 0, userToken(1, "y"))
			if tc.status == 0 {
				assert.NotEqual(t, host.ActionPause, res.Action, "decided at once after the hold")
			} else {
				require.NotNil(t, res.LocalResponse, "decided at once after the hold")
				assert.Equal(t, tc.status, res.LocalResponse.Status)
			}
		})
	}
}

// TestStartupHoldNative: the start-up hold on the SDK's emulator (one
// worker): held on the request headers, decided by the first sync.
func TestStartupHoldNative(t *testing.T) {
	stub := newStub(t)
	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:old", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
	hh, err := startNative(testConfig(`"startup_hold":"30s"`), stub.clusters())
	require.NoError(t, err)
	defer hh.close()
	n := hh.(*nativeHarness)
	em := n.host
	revoked := em.InitializeHttpContext()
	act := em.CallOnRequestHeaders(revoked, [][2]string{{":method", "GET"}, {":path", "/api/x"}, {":authority", "app"},
		{"authorization", "Bearer " + userToken(1, "old")}}, true)
	require.Equal(t, types.ActionPause, act, "no state yet: held")
	require.Nil(t, em.GetSentLocalResponse(revoked))
	valid := em.InitializeHttpContext()
	act = em.CallOnRequestHeaders(valid, [][2]string{{":method", "GET"}, {":path", "/api/x"}, {":authority", "app"},
		{"authorization", "Bearer " + userToken(1, "new")}}, true)
	require.Equal(t, types.ActionPause, act)

	n.tickAll(t) // the first sync: the held requests are decided
	lr := em.GetSentLocalResponse(revoked)
	require.NotNil(t, lr, "the revoked token is refused")
	assert.EqualValues(t, 401, lr.StatusCode)
	assert.Nil(t, em.GetSentLocalResponse(valid))
	assert.Equal(t, types.ActionContinue, em.GetCurrentHttpStreamAction(valid), "the valid token passes")
	assert.True(t, hasHeader(em.GetCurrentRequestHeaders(valid), "x-user-id", "1"), "decided in full")
}

func hasHeader(hdrs [][2]string, name, value string) bool {
	for _, kv := range hdrs {
		if kv[0] == name && kv[1] == value {
			return true
		}
	}
	return false
}
