package filter

import (
	"runtime"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// Metric names (Envoy exposes them as stats; gauges are summed over the
// workers, since every worker's VM updates the same stat).
const metricPrefix = "meshsession_"

type metrics struct {
	allowed, refused                 proxywasm.MetricCounter
	refusedBy                        map[string]proxywasm.MetricCounter
	syncSuccess, syncFailure         proxywasm.MetricCounter
	activityBatches, activityMarks   proxywasm.MetricCounter
	activityFailure                  proxywasm.MetricCounter
	loginsRegistered, loginsDenied   proxywasm.MetricCounter
	loginsUnregistered, failedLogins proxywasm.MetricCounter
	refreshDenied, logouts           proxywasm.MetricCounter
	heldHeadersReleased              proxywasm.MetricCounter // headers_stop_iteration without the host's opt-in
	syncLag, revocations, gcCycles   proxywasm.MetricGauge
	heapBytes                        proxywasm.MetricGauge
	lastLag, lastRevocations, lastGC int64
	lastHeap                         int64

	// allowedBatch counts allowed requests not yet added to the allowed
	// counter: proxy_increment_metric is a host call, so the request path
	// counts in the VM and the tick adds the batch (Envoy reads stats every
	// few seconds; the counter lags by at most one tick).
	allowedBatch uint64
}

func defineMetrics() *metrics {
	c := func(n string) proxywasm.MetricCounter { return proxywasm.DefineCounterMetric(metricPrefix + n) }
	g := func(n string) proxywasm.MetricGauge { return proxywasm.DefineGaugeMetric(metricPrefix + n) }
	return &metrics{
		allowed:             c("requests_allowed"),
		refused:             c("requests_refused"),
		refusedBy:           map[string]proxywasm.MetricCounter{},
		syncSuccess:         c("sync_success"),
		syncFailure:         c("sync_failure"),
		activityBatches:     c("activity_batches"),
		activityMarks:       c("activity_marks"),
		activityFailure:     c("activity_failure"),
		loginsRegistered:    c("logins_registered"),
		loginsDenied:        c("logins_denied"),
		loginsUnregistered:  c("logins_unregistered"),
		failedLogins:        c("logins_failed_reported"),
		refreshDenied:       c("refresh_denied"),
		logouts:             c("logouts"),
		heldHeadersReleased: c("held_headers_released"),
		syncLag:             g("sync_lag_ms"),
		revocations:         g("revocations"),
		gcCycles:            g("vm_gc_cycles"),
		heapBytes:           g("vm_heap_bytes"),
	}
}

// allow counts an allowed request (added to the counter on the next flush).
func (m *metrics) allow() { m.allowedBatch++ }

// flush adds the batched counts to their counters (every tick).
func (m *metrics) flush() {
	if m.allowedBatch > 0 {
		m.allowed.Increment(m.allowedBatch)
		m.allowedBatch = 0
	}
}

// refusal counts a refused request under its reason.
func (m *metrics) refusal(reason string) {
	m.refused.Increment(1)
	c, ok := m.refusedBy[reason]
	if !ok {
		c = proxywasm.DefineCounterMetric(metricPrefix + "requests_refused_" + reason)
		m.refusedBy[reason] = c
	}
	c.Increment(1)
}

func setGauge(g proxywasm.MetricGauge, last *int64, v int64) {
	if v != *last {
		g.Add(v - *last)
		*last = v
	}
}

// observeVM updates the gauges and flushes the batched counts once per tick.
func (m *metrics) observeVM(p *pluginContext, t time.Time) {
	m.flush()
	setGauge(m.syncLag, &m.lastLag, t.Sub(p.sync.lastSync).Milliseconds())
	n := p.sync.state.Len()
	setGauge(m.revocations, &m.lastRevocations, int64(n.Revoked+n.Blocked+n.NotBefore))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	setGauge(m.gcCycles, &m.lastGC, int64(ms.NumGC))
	setGauge(m.heapBytes, &m.lastHeap, int64(ms.HeapAlloc))
}
