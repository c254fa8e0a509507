package host

import (
	"sort"
	"sync"
)

// Metrics holds the metrics defined by the plugin's VMs. As in Envoy, a metric
// name denotes one stat for the whole host: every worker that defines the same
// name and type updates the same value.
type Metrics struct {
	mu     sync.Mutex
	byName map[string]*metric
	byID   map[uint32]*metric
	nextID uint32
}

type metric struct {
	id     uint32
	name   string
	kind   MetricType
	value  int64 // counter, gauge
	count  uint64
	sum    int64
	values []int64 // histogram samples (bounded)
}

const maxHistogramSamples = 10000

// Metric is a snapshot of one metric.
type Metric struct {
	Name  string
	Type  MetricType
	Value int64 // counter and gauge value
	// Histogram only: number and sum of recorded values, and the last
	// recorded samples (at most 10,000).
	Count   uint64
	Sum     int64
	Samples []int64
}

func newMetrics() *Metrics {
	return &Metrics{byName: map[string]*metric{}, byID: map[uint32]*metric{}}
}

func (m *Metrics) define(kind MetricType, name string) (uint32, Status) {
	if kind > MetricHistogram {
		return 0, StatusBadArgument
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := m.byName[name]; ok {
		if x.kind != kind {
			return 0, StatusBadArgument
		}
		return x.id, StatusOK
	}
	m.nextID++
	x := &metric{id: m.nextID, name: name, kind: kind}
	m.byName[name] = x
	m.byID[x.id] = x
	return x.id, StatusOK
}

// update runs f on the metric id under the lock; NotFound when there is
// none.
func (m *Metrics) update(id uint32, f func(x *metric) Status) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.byID[id]
	if !ok {
		return StatusNotFound
	}
	return f(x)
}

func (m *Metrics) increment(id uint32, offset int64) Status {
	return m.update(id, func(x *metric) Status {
		switch x.kind {
		case MetricCounter:
			if offset < 0 {
				return StatusBadArgument
			}
			x.value += offset
		case MetricGauge:
			x.value += offset
		default:
			return StatusBadArgument
		}
		return StatusOK
	})
}

func (m *Metrics) record(id uint32, value uint64) Status {
	return m.update(id, func(x *metric) Status {
		switch x.kind {
		case MetricCounter:
			x.value += int64(value)
		case MetricGauge:
			x.value = int64(value)
		case MetricHistogram:
			x.count++
			x.sum += int64(value)
			if len(x.values) >= maxHistogramSamples {
				copy(x.values, x.values[1:])
				x.values = x.values[:len(x.values)-1]
			}
			x.values = append(x.values, int64(value))
		}
		return StatusOK
	})
}

func (m *Metrics) get(id uint32) (v int64, st Status) {
	st = m.update(id, func(x *metric) Status {
		if x.kind == MetricHistogram {
			return StatusBadArgument
		}
		v = x.value
		return StatusOK
	})
	return v, st
}

// Get returns the metric called name.
func (m *Metrics) Get(name string) (Metric, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.byName[name]
	if !ok {
		return Metric{}, false
	}
	return x.snapshot(), true
}

// All returns every metric, sorted by name.
func (m *Metrics) All() []Metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Metric, 0, len(m.byName))
	for _, x := range m.byName {
		out = append(out, x.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (x *metric) snapshot() Metric {
	return Metric{Name: x.name, Type: x.kind, Value: x.value, Count: x.count, Sum: x.sum,
		Samples: append([]int64(nil), x.values...)}
}
