package latency

import (
	"testing"
	"time"
)

func TestPercentilesMS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lat      []time.Duration
		p50, p99 float64
	}{
		{"one", []time.Duration{3 * time.Millisecond}, 3, 3},
		{"two unsorted", []time.Duration{4 * time.Millisecond, 2 * time.Millisecond}, 2, 4},
		{"hundred", hundred(), 50, 99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p50, p99 := PercentilesMS(tc.lat)
			if p50 != tc.p50 || p99 != tc.p99 {
				t.Errorf("PercentilesMS = %v, %v; want %v, %v", p50, p99, tc.p50, tc.p99)
			}
			for i := 1; i < len(tc.lat); i++ {
				if tc.lat[i-1] > tc.lat[i] {
					t.Fatalf("lat not sorted: %v", tc.lat)
				}
			}
		})
	}
}

// hundred is 100 ms down to 1 ms.
func hundred() []time.Duration {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(100-i) * time.Millisecond
	}
	return lat
}
