// Package latency summarises the latencies a benchmark measured.
package latency

import (
	"slices"
	"time"
)

// PercentilesMS sorts lat and returns its p50 and p99 in milliseconds
// (nearest rank). lat must not be empty.
func PercentilesMS(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := min(max(int(p*float64(len(lat))+0.5)-1, 0), len(lat)-1)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	return pct(0.50), pct(0.99)
}
