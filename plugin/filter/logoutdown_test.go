package filter_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// pendingLogouts reads the proxy's shared list of local revocations
// (plugin.wasm only: natively, ok is false).
func pendingLogouts(t *testing.T, h harness) (list *revocation.Local, ok bool) {
	t.Helper()
	w, isWasm := h.(*wasmHarness)
	if !isWasm {
		return nil, false
	}
	val, _, _ := w.h.SharedData("meshsession").Get("meshsession.g4.local")
	l, err := revocation.UnmarshalLocal(val, revocation.MaxLocalLimit)
	require.NoError(t, err)
	return l, true
}

func logout(tok string, worker int) request {
	return request{method: "POST", path: "/api/auth/logout", headers: bearer(tok), worker: worker,
		app: func([][2]string, []byte) (int, [][2]string, []byte) {
			return 200, [][2]string{{"content-type", "application/json"}}, []byte(`{"data":{"ok":true}}`)
		}}
}

// revokesFor are the keys of the revoke reports the stub received.
func revokesFor(stub *stubSvc) [][]string {
	var out [][]string
	for _, r := range stub.recorded().revoke {
		out = append(out, r.Keys)
	}
	return out
}

// TestLogoutWhileSessionsvcIsDown: a logout through the proxy while
// sessionsvc is down goes on to the app (its answer is the client's), and
// the token is refused at once by every worker of the proxy, and keeps
// being refused while sessionsvc stays down. Once sessionsvc is back the
// leaseholder reports it (the stub records it), the feed carries it, the
// local entry is dropped, and the token stays refused.
func TestLogoutWhileSessionsvcIsDown(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		tok := userToken(110, "down-1")
		other := userToken(111, "down-other")
		everyWorkerPasses(t, h, tok)

		stub.set(func(s *stubSvc) { s.down = true })
		r := h.do(t, logout(tok, 1%h.workers()))
		require.False(t, r.local, "the logout reaches the app: %s", r.body)
		require.Equal(t, 200, r.status)
		assert.JSONEq(t, `{"data":{"ok":true}}`, string(r.body), "the app's answer goes out unchanged")
		everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "at once, sessionsvc down")
		everyWorkerPasses(t, h, other)
		assert.Equal(t, int64(1), h.counter("meshsession_logouts_pending"))
		assert.Contains(t, h.logs(), "enforced by this proxy")

		// sessionsvc stays down for a while: syncs and reports fail, the
		// logout is still enforced everywhere.
		for i := 0; i < 5; i++ {
			h.advance(250 * time.Millisecond)
			h.tickAll(t)
			h.tickAll(t)
		}
		everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "while sessionsvc stays down")
		assert.Empty(t, revokesFor(stub), "nothing reached the down sessionsvc")
		if l, ok := pendingLogouts(t, h); ok {
			require.Equal(t, 1, l.Len())
			assert.Equal(t, 1, l.Undelivered())
		}

		// sessionsvc is back: the report is delivered, then the feed has
		// the revocation and the local entry goes.
		stub.set(func(s *stubSvc) { s.down = false })
		for deadline := time.Now().Add(5 * time.Second); len(revokesFor(stub)) == 0; {
			require.True(t, time.Now().Before(deadline), "the pending logout was never reported:\n%s", h.logs())
			nextSync(t, h)
		}
		rec := stub.recorded().revoke
		require.Len(t, rec, 1, "reported once")
		assert.Equal(t, protocol.ReasonLogout, rec[0].Reason)
		assert.Contains(t, rec[0].Keys, "sid:down-1")
		assert.Equal(t, int64(1), h.counter("meshsession_logouts_reported_late"))
		for i := 0; i < 3; i++ {
			nextSync(t, h)
		}
		everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "after sessionsvc is back")
		if l, ok := pendingLogouts(t, h); ok {
			assert.Zero(t, l.Len(), "the feed carries it: the local entry is dropped")
		}
		nextSync(t, h)
		everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "after the local entry is dropped")
		assert.Len(t, stub.recorded().revoke, 1, "reported once")
	})
}

// TestLogoutRecordedButSyncFails: sessionsvc records the logout but the
// sync after it fails: the token is refused at once by every worker all
// the same (listed locally as delivered, never reported again), and the
// entry goes once the feed has it.
func TestLogoutRecordedButSyncFails(t *testing.T) {
	stub := newStub(t)
	h := startWasmHost(t, workers, testConfig(""), stub.clusters())
	h.tickAll(t)
	tok := userToken(112, "recorded-1")
	everyWorkerPasses(t, h, tok)
	stub.set(func(s *stubSvc) { s.garbage = "not a page" })
	r := h.do(t, logout(tok, 2))
	require.Equal(t, 200, r.status)
	require.False(t, r.local)
	everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "sync failed after the revoke")
	l, _ := pendingLogouts(t, h)
	require.Equal(t, 1, l.Len())
	assert.Zero(t, l.Undelivered(), "sessionsvc has it: nothing to report")
	assert.Zero(t, h.counter("meshsession_logouts_pending"))

	stub.set(func(s *stubSvc) { s.garbage = "" })
	for i := 0; i < 3; i++ {
		nextSync(t, h)
	}
	l, _ = pendingLogouts(t, h)
	assert.Zero(t, l.Len(), "the feed carries it: dropped")
	everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "from the feed")
	assert.Len(t, stub.recorded().revoke, 1, "never reported again")
}

// TestPendingLogoutsAreBounded: at most pending_logouts logouts are kept
// while sessionsvc is down; past that a new one is not kept (the oldest
// are), which is logged and counted. Once sessionsvc is back those kept
// are reported, oldest first.
func TestPendingLogoutsAreBounded(t *testing.T) {
	stub := newStub(t)
	h := startWasmHost(t, workers, testConfig(`"pending_logouts":3`), stub.clusters())
	h.tickAll(t)
	stub.set(func(s *stubSvc) { s.down = true })
	var toks []string
	for i := 0; i < 5; i++ {
		tok := userToken(120+i, "bound-"+strconv.Itoa(i))
		toks = append(toks, tok)
		r := h.do(t, logout(tok, i%workers))
		require.Equal(t, 200, r.status, "logout %d goes on to the app", i)
		require.False(t, r.local)
	}
	for i := 0; i < 3; i++ {
		everyWorkerRefuses(t, h, toks[i], protocol.ReasonLogout, "kept "+strconv.Itoa(i))
	}
	for i := 3; i < 5; i++ {
		everyWorkerPasses(t, h, toks[i]) // not kept: past the bound
	}
	l, _ := pendingLogouts(t, h)
	assert.Equal(t, 3, l.Len())
	assert.Equal(t, int64(2), h.counter("meshsession_logouts_pending_dropped"))
	assert.Equal(t, int64(3), h.counter("meshsession_logouts_pending"))
	assert.Contains(t, h.logs(), "logouts already pending on this proxy")

	stub.set(func(s *stubSvc) { s.down = false })
	for deadline := time.Now().Add(5 * time.Second); len(revokesFor(stub)) < 3; {
		require.True(t, time.Now().Before(deadline), "pending logouts not reported: %v", revokesFor(stub))
		nextSync(t, h)
	}
	got := revokesFor(stub)
	require.Len(t, got, 3)
	for i, keys := range got {
		assert.Equal(t, "sid:bound-"+strconv.Itoa(i), keys[0], "oldest first")
	}
	for i := 0; i < 3; i++ {
		nextSync(t, h)
	}
	l, _ = pendingLogouts(t, h)
	assert.Zero(t, l.Len())
	for i := 0; i < 3; i++ {
		everyWorkerRefuses(t, h, toks[i], protocol.ReasonLogout, "from the feed "+strconv.Itoa(i))
	}
	assert.False(t, strings.Contains(h.logs(), "unreadable"), h.logs())
}
