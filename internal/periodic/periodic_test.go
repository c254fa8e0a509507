package periodic_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/internal/periodic"
)

func TestRunCallsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	periodic.Run(ctx, time.Millisecond, func(got context.Context) {
		assert.Equal(t, ctx, got)
		if calls++; calls == 3 {
			cancel()
		}
	})
	assert.Equal(t, 3, calls, "no call after the context ended")
}

func TestRunReturnsAtOnceWhenDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	periodic.Run(ctx, time.Hour, func(context.Context) { t.Error("called after the context ended") })
}
