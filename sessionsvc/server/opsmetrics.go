package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// deadLetterCap bounds the dead-letter count a scrape reads (the gauge
// saturates there; any value above 0 already calls for attention).
const deadLetterCap = 1000

// cachedProbe runs fn at most every ttl, so that frequent scrapes (or
// several Prometheus servers) do not each hit the database.
type cachedProbe struct {
	mu    sync.Mutex
	ttl   time.Duration
	at    time.Time
	value float64
	fn    func(context.Context) float64
}

func (c *cachedProbe) get() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.value
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.value, c.at = c.fn(ctx), time.Now()
	return c.value
}

// registerOpsMetrics adds the gauges the alert rules watch
// (deploy/monitoring/prometheus-rules.yaml): whether the database answers,
// and how many alerts wait dead-lettered in the outbox.
func (s *Server) registerOpsMetrics(reg *prometheus.Registry) error {
	dbUp := &cachedProbe{ttl: 5 * time.Second, fn: func(ctx context.Context) float64 {
		if err := s.st.Ping(ctx); err != nil {
			return 0
		}
		return 1
	}}
	dead := &cachedProbe{ttl: 15 * time.Second, fn: func(ctx context.Context) float64 {
		l, err := s.st.ListAlerts(ctx, true, deadLetterCap)
		if err != nil {
			return -1 // unknown: the database alert covers it
		}
		return float64(len(l))
	}}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshsession_database_up",
			Help: "1 when the database answers and its migrations are applied (as /readyz), else 0.",
		}, dbUp.get),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshsession_alerts_dead_letters",
			Help: "Alerts dead-lettered in the outbox, waiting for a retry from the dashboard (capped at 1000; -1 when unknown).",
		}, dead.get),
	} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); ok {
				continue
			}
			return err
		}
	}
	return nil
}
