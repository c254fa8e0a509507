package filter_test

import (
	"sync/atomic"
	"time"
)

// testClock is the filter's clock in these tests: the real time plus an
// offset the test advances, so that a sync interval or a staleness bound
// passes without waiting for it (and time still flows for everything else).
// On plugin.wasm it is the host's Config.Now; natively filter.SetClock.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the filter's time forward by d.
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }
