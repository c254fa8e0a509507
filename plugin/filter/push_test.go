package filter_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// refusedEverywhere waits (bounded) until every worker refuses tok.
func refusedEverywhere(t *testing.T, h *wasmHarness, tok, what string) {
	t.Helper()
	for w := 0; w < h.workers(); w++ {
		deadline := time.Now().Add(5 * time.Second)
		for !h.do(t, get("/api/x", bearer(tok), w)).local {
			if time.Now().After(deadline) {
				t.Fatalf("%s: worker %d still accepts the token 5s after its revocation", what, w)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func revokeSid(stub *stubSvc, sid string) {
	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:" + sid, Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
}

// TestPushFromTheFirstSnapshot: against a sessionsvc that long-polls, the
// worker that fetched the first snapshot (answered at once, as snapshots
// are) waits on the feed right away, and every revocation reaches every
// worker without any tick, with one sync call per change.
func TestPushFromTheFirstSnapshot(t *testing.T) {
	stub := newStub(t)
	stub.set(func(s *stubSvc) { s.longPoll = true })
	h := startWasmHost(t, workers, testConfig(`"sync_wait":"5s"`), stub.clusters())
	h.parked = 1                    // the lease's long-poll
	require.NoError(t, h.h.Tick(0)) // the only tick: worker 0 takes the lease
	const trials = 3
	for trial := 0; trial < trials; trial++ {
		sid := "push-" + strconv.Itoa(trial)
		tok := userToken(80+trial, sid)
		for w := 0; w < workers; w++ {
			require.False(t, h.do(t, get("/api/x", bearer(tok), w)).local, "trial %d: worker %d admits", trial, w)
		}
		revokeSid(stub, sid)
		refusedEverywhere(t, h, tok, "trial "+strconv.Itoa(trial))
	}
	// The snapshot, then one wait per change and the one parked now (a
	// page answering a cursor a worker moved past is asked again: slack).
	require.LessOrEqual(t, stub.count(protocol.PathSync), 2+2*trials)
}

// TestOlderSessionsvcIsPolled: a sessionsvc that ignores wait= (it answers
// an empty delta at once) is polled every sync_interval: no fetch follows
// another without a tick, and revocations arrive on the next poll.
func TestOlderSessionsvcIsPolled(t *testing.T) {
	stub := newStub(t)
	h := startWasmHost(t, workers, testConfig(`"sync_wait":"5s"`), stub.clusters())
	require.NoError(t, h.h.Tick(0))
	h.settle(t) // nothing left in flight: no fetch loop
	// The snapshot, and the wait asked after it, answered at once.
	require.Equal(t, 2, stub.count(protocol.PathSync))
	tok := userToken(90, "poll-0")
	require.False(t, h.do(t, get("/api/x", bearer(tok), 1)).local)
	revokeSid(stub, "poll-0")
	h.settle(t)
	require.Equal(t, 2, stub.count(protocol.PathSync), "no fetch without a tick")
	h.advance(110 * time.Millisecond) // past sync_interval (100ms)
	require.NoError(t, h.h.Tick(2))
	h.settle(t)
	refusedEverywhere(t, h, tok, "after the poll")
}

// TestOnDemandSyncBesideTheLongPoll: a revoking route answered on the
// worker whose long-poll is out is not held until that long-poll answers
// (sync_wait): a logout-others that revoked nothing goes out at once, and
// one that revoked a session goes out once every worker refuses it.
func TestOnDemandSyncBesideTheLongPoll(t *testing.T) {
	stub := newStub(t)
	stub.set(func(s *stubSvc) { s.longPoll = true })
	h := startWasmHost(t, workers, testConfig(`"sync_wait":"10s"`), stub.clusters())
	h.parked = 1
	require.NoError(t, h.h.Tick(0)) // worker 0 takes the lease and long-polls
	for deadline := time.Now().Add(5 * time.Second); stub.count(protocol.PathSync) < 2; {
		require.True(t, time.Now().Before(deadline), "worker 0 did not long-poll after its snapshot")
		time.Sleep(2 * time.Millisecond)
	}
	const path = "/api/magic-sessionmanager/logout-others"
	caller := bearer(userToken(95, "caller"))
	answer := func(revoke string) func([][2]string, []byte) (int, [][2]string, []byte) {
		return func([][2]string, []byte) (int, [][2]string, []byte) {
			if revoke != "" {
				revokeSid(stub, revoke) // sessionsvc revokes, then answers
			}
			return 200, [][2]string{{"content-type", "application/json"}}, []byte(`{"data":{"success":true}}`)
		}
	}
	// Nothing to revoke: the log does not move, the long-poll keeps
	// waiting; the answer does not (the harness waits 5s at most).
	r := h.do(t, request{method: "POST", path: path, headers: caller, worker: 0, app: answer("")})
	require.Equal(t, 200, r.status)

	victim := userToken(95, "aside-victim")
	for w := 0; w < workers; w++ {
		require.False(t, h.do(t, get("/api/x", bearer(victim), w)).local)
	}
	r = h.do(t, request{method: "POST", path: path, headers: caller, worker: 0, app: answer("aside-victim")})
	require.Equal(t, 200, r.status)
	for w := 0; w < workers; w++ {
		require.True(t, h.do(t, get("/api/x", bearer(victim), w)).local, "worker %d accepts a session revoked before the answer", w)
	}
}

// TestOneLongPollAfterATakeOver: a worker whose long-poll outlived the
// lease (another worker took it over) stops when its answer comes,
// instead of long-polling beside the new holder: one wait per proxy.
func TestOneLongPollAfterATakeOver(t *testing.T) {
	stub := newStub(t)
	stub.set(func(s *stubSvc) { s.longPoll = true })
	h := startWasmHost(t, workers, testConfig(`"sync_wait":"5s"`), stub.clusters())
	h.parked = 2
	require.NoError(t, h.h.Tick(0)) // worker 0 long-polls
	for deadline := time.Now().Add(5 * time.Second); stub.count(protocol.PathSync) < 2; {
		require.True(t, time.Now().Before(deadline), "worker 0 did not long-poll")
		time.Sleep(2 * time.Millisecond)
	}
	h.advance(time.Minute)          // its lease ran out (a stalled worker, as far as the others know)
	require.NoError(t, h.h.Tick(1)) // worker 1 takes the lease over and long-polls too
	for deadline := time.Now().Add(5 * time.Second); stub.count(protocol.PathSync) < 3; {
		require.True(t, time.Now().Before(deadline), "worker 1 did not take the lease over")
		time.Sleep(2 * time.Millisecond)
	}
	tok := userToken(96, "takeover")
	require.False(t, h.do(t, get("/api/x", bearer(tok), 2)).local)
	revokeSid(stub, "takeover") // answers both waits
	refusedEverywhere(t, h, tok, "after the take-over")
	h.parked = 1
	h.settle(t) // one long-poll left parked, not two
}
