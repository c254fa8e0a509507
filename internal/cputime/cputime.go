// Package cputime reads the process's CPU time, so that benchmarks on a
// shared, loaded machine can report CPU time per operation next to wall
// time (which includes time spent waiting for a core).
package cputime

import "time"

// Now returns the process's user+system CPU time (0 where unsupported).
func Now() time.Duration { return now() }

// Thread returns the calling thread's CPU time (0 where unsupported); the
// caller locks its goroutine to the thread (runtime.LockOSThread) for the
// span it measures.
func Thread() time.Duration { return thread() }

// Report is called around a benchmark loop: it returns a function that,
// called after the loop with the number of operations, gives the CPU
// nanoseconds per operation (0 where unsupported).
func Report() func(n int) float64 {
	start := now()
	return func(n int) float64 {
		if n <= 0 {
			return 0
		}
		return float64(now()-start) / float64(n)
	}
}
