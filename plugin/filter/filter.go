// Package filter is the thin proxy-wasm SDK layer of the meshsession filter:
// the VM, plugin (root) and HTTP contexts, shared data, ticks and callouts.
// Every decision is made by the pure packages under plugin/core; this
// package only moves bytes between them and the host.
package filter

import (
	"runtime/debug"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/core/throttle"
)

// NewVMContext returns the filter's VM context.
func NewVMContext() types.VMContext { return &vmContext{} }

type vmContext struct {
	types.DefaultVMContext
}

// gcPercent keeps the VM's linear memory near its live heap: a VM's memory
// never shrinks. With 100,000 revocations (a 2.3 MiB pointer-free table)
// a worker under load measured 10.5 MiB at 20% and 13.5 MiB at Go's
// default 100%. The request path allocates little, so collections stay
// rare; a snapshot or a big sync page is applied with the collector
// relaxed (bigPageGCPercent), its garbage being short-lived.
const (
	gcPercent        = 20
	bigPageGCPercent = 100
)

func (*vmContext) OnVMStart(vmConfigurationSize int) types.OnVMStartStatus {
	debug.SetGCPercent(gcPercent)
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return &pluginContext{contextID: contextID}
}

// pluginContext is one worker's root context: configuration, decision
// engine, its copy of the revocation state, its activity batch.
type pluginContext struct {
	types.DefaultPluginContext
	contextID uint32

	cfg      *config.Config
	engine   *decide.Engine
	metrics  *metrics
	revoking decide.RevokingRoutes // revoking_routes (timing.go)

	sync     syncer
	activity *throttle.Batch
	marks    *throttle.Tracker
	// lastSeen caches, per session key hash (Decision.SessionHash), when
	// this worker last saw a fresh mark (its own or another worker's), to
	// skip shared-data reads.
	lastSeen map[uint64]int64
	// seen is a direct-mapped cache in front of lastSeen for the request
	// path (a map lookup is a hash and a probe: costly calls in Wasm); an
	// entry is only a copy of lastSeen's, so a stale one is merely due.
	seen [seenSlots]seenSlot

	activityInFlight bool
	// activityRetry are batches sessionsvc could not take (unreachable,
	// 5xx, 429), oldest first, resent before new ones (at most
	// maxActivityRetry: the oldest is dropped past it).
	activityRetry []activityBatch
	startedAt     time.Time
	ticks         uint64

	// freeHTTP are HTTP contexts the host deleted, for reuse.
	freeHTTP []*httpContext

	// req and hdrs are the request being decided and its header iterator:
	// valid within one request-headers callback, like the header buffer.
	req  decide.Request
	hdrs headerPairs

	// heldHeaders are login/refresh answers whose headers are held under
	// headers_stop_iteration, until their body comes (observe.go).
	heldHeaders map[uint32]heldAnswer
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	var data []byte
	if size > 0 {
		var err error
		data, err = proxywasm.GetPluginConfiguration()
		if err != nil {
			proxywasm.LogCriticalf("meshsession: read plugin configuration: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	cfg, err := config.Parse(data)
	if err != nil {
		proxywasm.LogCriticalf("meshsession: invalid plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	engine, err := decide.New(cfg)
	if err != nil {
		proxywasm.LogCriticalf("meshsession: invalid plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	for _, w := range cfg.Warnings {
		proxywasm.LogWarnf("meshsession: configuration: %s", w)
	}
	revoking, err := decide.NewRevokingRoutes(cfg.RevokingRoutes)
	if err != nil {
		proxywasm.LogCriticalf("meshsession: invalid plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg, p.engine, p.revoking = cfg, engine, revoking
	p.hdrs.only = requestHeaderNames(cfg)
	p.startedAt = now()
	p.metrics = defineMetrics()
	p.sync = syncer{plugin: p, state: revocation.New(), lastSync: p.startedAt}
	p.sync.startTiming()
	p.sync.startLocal()
	createPublishLock()
	p.activity = throttle.NewBatch(0)
	p.marks = throttle.NewTracker(0)
	p.lastSeen = make(map[uint64]int64)
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(p.sync.initialTick().Milliseconds())); err != nil {
		proxywasm.LogCriticalf("meshsession: set tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("meshsession: filter started: sessionsvc cluster %q, verify %s, sync every %s, last-seen every %s, stale policy %s after %s",
		cfg.Cluster, cfg.Verify.Mode, cfg.SyncInterval, cfg.LastSeenInterval, cfg.StalePolicy, cfg.MaxStaleness)
	return types.OnPluginStartStatusOK
}

// tickPeriod is the root context's timer: the sync interval, which is also
// how often the activity batch is flushed.
func tickPeriod(cfg *config.Config) time.Duration {
	d := cfg.SyncInterval
	if d < 10*time.Millisecond {
		d = 10 * time.Millisecond
	}
	return d
}

func (p *pluginContext) OnTick() {
	p.ticks++
	t := now()
	p.sync.tick(t)
	p.flushActivity(t)
	p.releaseStalledHeaders()
	if p.ticks%16 == 0 {
		p.housekeeping(t)
	}
	p.metrics.observeVM(p, t)
}

// seenSlots is the size of pluginContext.seen (a power of two).
const seenSlots = 256

type seenSlot struct {
	hash uint64 // Decision.SessionHash
	at   int64  // its last-seen mark, unix ms (0: empty)
}

// maxFreeHTTP bounds the HTTP contexts kept for reuse.
const maxFreeHTTP = 256

func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	if n := len(p.freeHTTP); n > 0 {
		h := p.freeHTTP[n-1]
		p.freeHTTP[n-1] = nil
		p.freeHTTP = p.freeHTTP[:n-1]
		h.contextID = contextID
		return h
	}
	return &httpContext{plugin: p, contextID: contextID}
}

// released is called (through the Wasm build's glue) once the host has
// deleted the context (proxy_on_delete) and the SDK no longer references
// it: a context of an ordinary request is kept for a later stream, so that
// a request allocates nothing. Contexts of the login, refresh and logout
// routes are left to the GC: their callouts' callbacks may still hold them.
func (h *httpContext) released() {
	p := h.plugin
	if h.held {
		p.sync.unhold(h)
	}
	if h.route != decide.RouteNone || h.revoking || len(p.freeHTTP) >= maxFreeHTTP {
		return
	}
	h.reset()
	p.freeHTTP = append(p.freeHTTP, h)
}

// reset empties h for reuse (but its plugin), field by field: in the Wasm
// build `*h = httpContext{plugin: p}` is a memory.fill (see
// plugin/core/decide on struct copies in Wasm).
func (h *httpContext) reset() {
	h.contextID, h.route, h.requestBody, h.presented, h.status = 0, decide.RouteNone, nil, "", 0
	h.waiting = false
	h.ua, h.lang, h.ip, h.encoding, h.setRefresh = "", "", "", "", ""
	h.respTooLarge, h.headersSent, h.headersHeld, h.observed, h.pending = false, false, false, false, false
	h.loginIdent, h.loginIdentRead = "", false
	h.held, h.heldEOS, h.revoking, h.inCallback = false, false, false, false
}

// OnPluginDone flushes the counters batched in the VM.
func (p *pluginContext) OnPluginDone() bool {
	if p.metrics != nil {
		p.metrics.flush()
	}
	return true
}
