//go:build linux || darwin || freebsd

package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

func now() time.Duration { return clock(unix.CLOCK_PROCESS_CPUTIME_ID) }

func thread() time.Duration { return clock(unix.CLOCK_THREAD_CPUTIME_ID) }

// clock reads one of the kernel's CPU-time clocks (0 if it cannot).
func clock(id int32) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
