//go:build !wasip1 || tinygo

package filter

import "time"

// SetClock replaces the native build's clock (nil: time.Now). The native
// emulator hosts one plugin per process, so tests set it while they hold it.
func SetClock(f func() time.Time) {
	if f == nil {
		f = time.Now
	}
	clock = f
}
