package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	feedCursor    prometheus.Gauge
	activityBatch prometheus.Histogram
	activityMarks prometheus.Counter
	registrations *prometheus.CounterVec
	ended         *prometheus.CounterVec
	// discovered counts sessions registered from traffic; unreadableLogins
	// 2xx login answers the proxy could not read, by why and policy.
	discovered       prometheus.Counter
	unreadableLogins *prometheus.CounterVec
	syncWaiting      prometheus.Gauge
}

// statusRecorder captures the status code written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// activeCache keeps the sessions-active count for a few seconds so scrapes
// do not each run a COUNT.
type activeCache struct {
	mu    sync.Mutex
	at    time.Time
	value float64
	fn    func(context.Context) (float64, error)
}

func (c *activeCache) get() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < 10*time.Second {
		return c.value
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if v, err := c.fn(ctx); err == nil {
		c.value = v
		c.at = time.Now()
	}
	return c.value
}

func newMetrics(reg *prometheus.Registry, countActive func(context.Context) (float64, error)) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshsession_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "meshsession_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		feedCursor: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshsession_feed_cursor", Help: "Revocation log cursor most recently handed out by the sync feed.",
		}),
		activityBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meshsession_activity_batch_size", Help: "Marks per activity batch from the plugins.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		activityMarks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshsession_activity_marks_total", Help: "Activity marks accepted.",
		}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshsession_registrations_total", Help: "Logins registered, by decision.",
		}, []string{"decision"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshsession_sessions_ended_total", Help: "Sessions ended through the APIs, by reason.",
		}, []string{"reason"}),
		discovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshsession_sessions_discovered_total", Help: "Sessions registered from traffic (tokens no session knew).",
		}),
		unreadableLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshsession_logins_unreadable_total", Help: "2xx login answers the proxy could not read, by why and whether a login policy refused them.",
		}, []string{"why", "refused"}),
		syncWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshsession_sync_waiting", Help: "Sync feed requests waiting in a long-poll (wait=).",
		}),
	}
	cache := &activeCache{fn: countActive}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "meshsession_sessions_active", Help: "Sessions currently active (isActive).",
	}, cache.get)
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.feedCursor, m.activityBatch, m.activityMarks,
		m.registrations, m.ended, m.discovered, m.unreadableLogins, m.syncWaiting, active,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); ok {
				continue
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	lat := m.latency.WithLabelValues(route)
	// The counter of the route's last status: a run of answers with one
	// status (a fleet's long-polls) looks its series up once.
	var last atomic.Pointer[statusCounter]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = 499
		}
		lat.Observe(time.Since(start).Seconds())
		c := last.Load()
		if c == nil || c.status != rec.status {
			c = &statusCounter{status: rec.status, c: m.requests.WithLabelValues(route, strconv.Itoa(rec.status))}
			last.Store(c)
		}
		c.c.Inc()
	})
}

type statusCounter struct {
	status int
	c      prometheus.Counter
}

func (m *metrics) handler(reg *prometheus.Registry) http.Handler {
	return m.instrument("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

func (m *metrics) observeCursor(c int64) {
	m.feedCursor.Set(float64(c))
}
