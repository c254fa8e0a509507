package filter

import (
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/revocation"
)

// When a revocation takes effect on the workers of one proxy:
//
//   - Monotone: every request that may carry a token
//     (decide.Request.MayHoldToken), and every presented refresh token,
//     first reads the CAS of keyStamp (an empty shared-data value rewritten
//     after every publication: one host call that copies nothing into the
//     VM) and adopts the published state when it moved; a request without
//     one is decided without the state. A worker only refuses a token for a revocation it holds,
//     and it holds only what it fetched and published before deciding
//     anything, or adopted from what was published: so once one worker
//     refused it, every request that starts later on any worker of the
//     proxy sees it too. A worker never steps back to an older state.
//   - On demand: after a logout route revoked its session, and on the 2xx
//     answer of a revoking route (revoking_routes), the stream is held
//     until a sync fetched after the revocation has been applied and
//     published (syncNow); only then does the client get the answer.
//   - Start-up: until a worker has a state, token-bearing requests are
//     held (at most startup_hold) and decided when the first state
//     arrives; the timer ticks fast meanwhile. Past the hold, stale_policy
//     decides (fail_closed: 503).

// timing is the syncer's part for the above.
type timing struct {
	stampCas  uint32
	haveStamp bool

	waiters []func() // run once the current fetch chain is over
	// unpublished: this worker's state is newer than what it could
	// publish (the publish lock was taken); pubWaiters, the waiters that
	// wait for it (retryPublish).
	unpublished bool
	pubWaiters  []func()
	again       bool // a sync was asked for while a fetch was out: fetch once more
	leased      bool // the current fetch chain holds the lease

	// A sync on demand while this worker's long-poll is out goes beside
	// it (aside.go): aside, one is out; asideNext, the waiters that came
	// meanwhile, for the next one.
	aside     bool
	asideNext []func()

	held     []heldStream
	fastTick bool

	keptCounter, heldCounter, holdExpired, onDemand proxywasm.MetricCounter
}

type heldStream struct {
	h  *httpContext
	id uint32 // the context id it was held under (contexts are reused)
}

// maxHeld bounds the streams held at start-up; more pass to stale_policy.
const maxHeld = 4096

// startupTick is the tick period while a worker waits for its first state.
const startupTick = 20 * time.Millisecond

func (s *syncer) startTiming() {
	c := func(n string) proxywasm.MetricCounter { return proxywasm.DefineCounterMetric(metricPrefix + n) }
	s.keptCounter = c("revocations_kept")
	s.heldCounter = c("requests_held")
	s.holdExpired = c("requests_hold_expired")
	s.onDemand = c("syncs_on_demand")
}

// initialTick is the tick period at start: fast until the first state
// when a start-up hold is configured.
func (s *syncer) initialTick() time.Duration {
	d := tickPeriod(s.plugin.cfg)
	if s.plugin.cfg.StartupHold > 0 && d > startupTick {
		s.fastTick = true
		return startupTick
	}
	return d
}

// check adopts the published state if it moved since this worker last
// looked (the request path: one host call, nothing copied).
func (s *syncer) check() {
	cas, ok := sharedCas(keyStamp)
	if !ok || cas == s.stampCas && s.haveStamp {
		return
	}
	s.stampCas, s.haveStamp = cas, true
	s.adopt()
	s.adoptLocal(now()) // after the state: an entry another worker dropped is kept until this state carries it
}

// bumpStamp tells the other workers that a new state is published.
func (s *syncer) bumpStamp() {
	_ = putShared(keyStamp, nil)
	if cas, ok := sharedCas(keyStamp); ok {
		s.stampCas, s.haveStamp = cas, true // mine: nothing to adopt
	}
}

// ready reports whether this worker has a revocation state (a snapshot
// fetched or adopted).
func (s *syncer) ready() bool { return s.state.Epoch() != "" }

// holdOver reports whether the start-up hold is over at t.
func (s *syncer) holdOver(t time.Time) bool {
	return t.Sub(s.plugin.startedAt) >= s.plugin.cfg.StartupHold
}

// hold holds h's request headers until this worker has a state, if the
// start-up hold allows; false: decide now.
func (s *syncer) hold(h *httpContext, t time.Time, endOfStream bool) bool {
	if s.ready() || s.holdOver(t) || len(s.held) >= maxHeld {
		return false
	}
	h.held, h.heldEOS = true, endOfStream
	s.held = append(s.held, heldStream{h, h.contextID})
	s.heldCounter.Increment(1)
	return true
}

// unhold forgets a held stream the host deleted.
func (s *syncer) unhold(h *httpContext) { h.held = false }

// releaseHeld decides the held streams again (root context: on a tick or
// a sync's answer), once this worker has a state or the hold is over.
func (s *syncer) releaseHeld(t time.Time) {
	if len(s.held) == 0 || !s.ready() && !s.holdOver(t) {
		return
	}
	held := s.held
	s.held = nil
	root := s.plugin.contextID
	for _, x := range held {
		h := x.h
		if !h.held || h.contextID != x.id {
			continue // gone meanwhile
		}
		h.held = false
		if !s.ready() {
			s.holdExpired.Increment(1)
		}
		runAs(x.id, root, func() {
			if h.OnHttpRequestHeaders(0, h.heldEOS) == types.ActionContinue {
				_ = proxywasm.ResumeHttpRequest()
			}
		})
	}
}

// timingTick runs on every tick after the sync step.
func (s *syncer) timingTick(t time.Time) {
	s.releaseHeld(t)
	if s.fastTick && (s.ready() || s.holdOver(t)) && len(s.held) == 0 {
		s.fastTick = false
		_ = proxywasm.SetTickPeriodMilliSeconds(uint32(tickPeriod(s.plugin.cfg).Milliseconds()))
	}
}

// syncNow fetches the feed now (or, if a fetch is out, once more after it)
// and runs done once the result is applied and published, or the fetch
// failed. caller is the context syncNow is called from: the fetch is made
// for the root context, so that its answer is not dropped when the
// caller's stream goes away.
func (s *syncer) syncNow(caller uint32, done func()) {
	s.onDemand.Increment(1)
	if s.longPolling() {
		// The long-poll may not answer before sync_wait (nothing moved
		// in the log: a logout-others with no other session): fetch
		// beside it, now.
		s.syncAside(caller, done)
		return
	}
	s.waiters = append(s.waiters, done)
	if s.fetching {
		s.again = true
		return
	}
	s.fetching, s.leased = true, false
	runAs(s.plugin.contextID, caller, func() { s.fetch(now()) })
}

// wake runs the waiters of the fetch chain that just ended, and decides
// held streams if the state arrived.
func (s *syncer) wake(t time.Time) {
	if len(s.waiters) > 0 {
		ws := s.waiters
		s.waiters = nil
		s.releaseWaiters(ws)
	}
	s.releaseHeld(t)
}

// releaseWaiters runs ws, or keeps them until this worker's state is
// published (retryPublish): an answer must not go before.
func (s *syncer) releaseWaiters(ws []func()) {
	if s.unpublished {
		s.pubWaiters = append(s.pubWaiters, ws...)
		return
	}
	for _, w := range ws {
		w()
	}
}

// noteKept logs and counts what a snapshot kept of the state it replaced.
func (s *syncer) noteKept(a revocation.Applied) {
	if !a.Swapped || a.PrevEpoch == "" {
		return
	}
	if a.PrevEpoch != a.Epoch {
		proxywasm.LogWarnf("meshsession: sessionsvc's store was reset (epoch %q -> %q)", a.PrevEpoch, a.Epoch)
	}
	if n := a.Kept.Total(); n > 0 {
		s.keptCounter.Increment(uint64(n))
		proxywasm.LogWarnf("meshsession: sessionsvc's snapshot (epoch %q) lacks %d revoked keys, %d blocked users and %d not-before times this proxy had seen: kept until they expire",
			a.Epoch, a.Kept.Revoked, a.Kept.Blocked, a.Kept.NotBefore)
	}
}

// resumeAfterSync is a syncNow waiter that resumes h's request (or its
// response), if h is still the stream it was (id) and still waits.
func resumeAfterSync(p *pluginContext, h *httpContext, id uint32, response bool) func() {
	return func() {
		if h.contextID != id || !h.waiting {
			return
		}
		h.waiting = false
		if h.inCallback {
			return // the stream's own callback goes on
		}
		runAs(id, p.contextID, func() {
			if response {
				_ = proxywasm.ResumeHttpResponse()
			} else {
				_ = proxywasm.ResumeHttpRequest()
			}
		})
	}
}

// revoked holds the 2xx answer of a revoking route (revoking_routes) until
// a sync fetched after it is applied and published: once the client has
// the answer, no worker of this proxy accepts what it revoked. Holding the
// response headers is Envoy's stop-all (no body callbacks), which the
// sync's callback ends by resuming the response.
func (h *httpContext) revoked() types.Action {
	h.revoking = false
	v, err := proxywasm.GetHttpResponseHeader(":status")
	if err != nil || len(v) != 3 || v[0] != '2' {
		return types.ActionContinue
	}
	p := h.plugin
	h.waiting, h.inCallback = true, true
	p.sync.syncNow(h.contextID, resumeAfterSync(p, h, h.contextID, true))
	h.inCallback = false
	if !h.waiting {
		return types.ActionContinue // already done (the fetch could not even start)
	}
	return types.ActionPause
}
