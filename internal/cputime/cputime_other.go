//go:build !(linux || darwin || freebsd)

package cputime

import "time"

func now() time.Duration { return 0 }

func thread() time.Duration { return 0 }
