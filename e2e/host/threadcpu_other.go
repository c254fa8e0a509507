//go:build !linux

package host

import "time"

// threadCPU is not measured here.
func threadCPU() time.Duration { return 0 }
