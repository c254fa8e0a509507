package lifecycle

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func seed(t *testing.T, st store.Store, now time.Time) (idle, old, fresh, endedLongAgo string) {
	t.Helper()
	mk := func(key string, login, last time.Time) string {
		s := &store.Session{UserID: "u", LoginTime: login, LastActive: last}
		require.NoError(t, st.CreateSession(context.Background(), s, []store.SessionKey{{Key: key, ExpiresAt: now.Add(time.Hour)}}, nil))
		return s.ID
	}
	idle = mk("sid:idle", now.Add(-2*time.Hour), now.Add(-time.Hour))
	old = mk("sid:old", now.Add(-40*24*time.Hour), now.Add(-time.Minute))
	fresh = mk("sid:fresh", now.Add(-time.Minute), now.Add(-time.Minute))
	endedLongAgo = mk("sid:gone", now.Add(-200*24*time.Hour), now.Add(-200*24*time.Hour))
	_, err := st.EndSessions(context.Background(), store.EndFilter{SessionIDs: []string{endedLongAgo}}, protocol.ReasonLogout, false, now.Add(-100*24*time.Hour))
	require.NoError(t, err)
	require.NoError(t, st.RevokeKeys(context.Background(), []string{"fp:expired"}, protocol.ReasonLogout, now.Add(-time.Minute), now.Add(-time.Hour)))
	return
}

func TestRunOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		idle, old, fresh, gone := seed(t, st, now)
		var mu sync.Mutex
		ended := map[string][]string{}
		r := New(Config{Store: st, Now: func() time.Time { return now },
			Policy: func(context.Context) Policy {
				return Policy{IdleAfter: 15 * time.Minute, MaxAge: 30 * 24 * time.Hour, Retention: 90 * 24 * time.Hour}
			},
			OnEnded: func(_ context.Context, ids []string, reason string) {
				mu.Lock()
				ended[reason] = append(ended[reason], ids...)
				mu.Unlock()
			}})
		stats, err := r.RunOnce(context.Background())
		require.NoError(t, err)
		assert.Equal(t, Stats{Idle: 1, Expired: 1, Purged: 1, Compacted: stats.Compacted}, stats)
		assert.GreaterOrEqual(t, stats.Compacted, 1)
		assert.Equal(t, []string{idle}, ended["idle"])
		assert.Equal(t, []string{old}, ended["expired"])
		s, err := st.GetSession(context.Background(), fresh)
		require.NoError(t, err)
		assert.True(t, s.Active)
		_, err = st.GetSession(context.Background(), gone)
		assert.ErrorIs(t, err, store.ErrNotFound)

		// Two replicas running at once do no double work.
		var wg sync.WaitGroup
		results := make([]Stats, 2)
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i], _ = r.RunOnce(context.Background())
			}(i)
		}
		wg.Wait()
		assert.Equal(t, 0, results[0].Idle+results[1].Idle)
	})
}

func TestRetentionForever(t *testing.T) {
	st := storetest.OpenSQLite(t)
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	_, _, _, gone := seed(t, st, now)
	r := New(Config{Store: st, Now: func() time.Time { return now },
		Policy: func(context.Context) Policy { return Policy{Retention: -1} }})
	stats, err := r.RunOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, stats.Purged+stats.Idle+stats.Expired)
	_, err = st.GetSession(context.Background(), gone)
	assert.NoError(t, err)
}

// TestRefusalsKeptForRetention: the refused logins (the dashboard's
// analytics) are deleted RETENTION after, not before; kept with -1.
func TestRefusalsKeptForRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		for _, at := range []time.Time{now.Add(-100 * 24 * time.Hour), now.Add(-89 * 24 * time.Hour), now.Add(-time.Hour)} {
			require.NoError(t, st.RecordLoginRefusal(ctx, store.RefusalLockout, at))
		}
		total := func() int {
			by, err := st.CountLoginRefusals(ctx, now.Add(-365*24*time.Hour), now)
			require.NoError(t, err)
			return by[store.RefusalLockout]
		}
		run := func(retention time.Duration) {
			_, err := New(Config{Store: st, Now: func() time.Time { return now },
				Policy: func(context.Context) Policy { return Policy{Retention: retention} }}).RunOnce(ctx)
			require.NoError(t, err)
		}
		run(-1)
		assert.Equal(t, 3, total(), "kept forever")
		run(90 * 24 * time.Hour)
		assert.Equal(t, 2, total(), "the one older than the retention deleted")
	})
}

func TestRunStopsWithContext(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { New(Config{Store: st, Interval: time.Hour}).Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

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
