// Package periodic runs a function on a fixed interval until its context
// ends: the reload and refresh loops of sessionsvc's background jobs.
package periodic

import (
	"context"
	"time"
)

// Run calls fn each time interval passes, until ctx is done; the first call
// comes one interval after the start. It returns when ctx is done (a call
// under way finishes first, and none starts after). interval must be
// positive.
func Run(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil { // both were ready: the end wins
				return
			}
			fn(ctx)
		}
	}
}
