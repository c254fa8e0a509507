package lifecycle

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// fakeMerger reports a full round backlog times, then nothing pending.
type fakeMerger struct {
	mu      sync.Mutex
	backlog int
	calls   int
	drained chan struct{}
}

func (f *fakeMerger) MergeActivity(_ context.Context, max int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.backlog > 0 {
		f.backlog--
		return max, nil
	}
	if f.calls > 1 {
		select {
		case <-f.drained:
		default:
			close(f.drained)
		}
	}
	return 0, nil
}

// A backlog is merged round after round without waiting for the
// interval; once none is left the merger waits for it.
func TestRunMergerDrainsBacklogThenWaits(t *testing.T) {
	f := &fakeMerger{backlog: 3, drained: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunMerger(ctx, f, time.Hour, nil) }()
	select {
	case <-f.drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the backlog was not merged without waiting for the interval")
	}
	cancel()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, 4, f.calls, "three full rounds, one that found none, then the interval")
}

// With the store: marks merged by the running merger reach the stored
// lastActive that the active filter reads.
func TestRunMergerMergesMarks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		now := time.Now().UTC().Truncate(time.Millisecond)
		s := &store.Session{UserID: "u", LoginTime: now.Add(-time.Hour), LastActive: now.Add(-time.Hour)}
		require.NoError(t, st.CreateSession(ctx, s, []store.SessionKey{{Key: "sid:m", ExpiresAt: now.Add(time.Hour)}}, nil))
		_, err := st.RecordActivity(ctx, []store.ActivityMark{{Key: "sid:m", At: now}})
		require.NoError(t, err)
		go RunMerger(ctx, st, 10*time.Millisecond, nil)
		require.Eventually(t, func() bool {
			p, err := st.ListSessions(ctx, store.SessionQuery{Status: store.StatusActive, IdleBefore: now.Add(-time.Minute)})
			return err == nil && len(p.Sessions) == 1 && p.Sessions[0].ID == s.ID
		}, 10*time.Second, 5*time.Millisecond)
	})
}
