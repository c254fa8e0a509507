package alert

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func enqueue(t testing.TB, st store.AlertOutbox, n int, channels []string, now time.Time) {
	t.Helper()
	var all []store.Alert
	for i := range n {
		p := samplePayload()
		p.UserID = fmt.Sprintf("user%d", i)
		a, err := NewAlerts(p, channels, now)
		require.NoError(t, err)
		all = append(all, a...)
	}
	require.NoError(t, st.EnqueueAlerts(context.Background(), all))
}

func senders(m map[string]Sender) func() map[string]Sender {
	return func() map[string]Sender { return m }
}

func TestDispatcherDelivers(t *testing.T) {
	st := storetest.OpenSQLite(t)
	now := time.Now().UTC()
	enqueue(t, st, 3, []string{"email", "webhook:ops"}, now)

	var mu sync.Mutex
	got := map[string][]string{}
	rec := func(ch string) Sender {
		return SenderFunc(func(_ context.Context, a store.Alert, p Payload) error {
			mu.Lock()
			defer mu.Unlock()
			got[ch] = append(got[ch], p.UserID)
			return nil
		})
	}
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(map[string]Sender{"email": rec("email"), "webhook:ops": rec("webhook:ops")})}, nil)
	n, err := d.Tick(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	assert.ElementsMatch(t, []string{"user0", "user1", "user2"}, got["email"])
	assert.ElementsMatch(t, []string{"user0", "user1", "user2"}, got["webhook:ops"])

	all, err := st.ListAlerts(context.Background(), false, 100)
	require.NoError(t, err)
	for _, a := range all {
		assert.NotNil(t, a.SentAt, "alert %d marked sent", a.ID)
	}
	n, err = d.Tick(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left")
}

func TestDispatcherBackoffAndDeadLetter(t *testing.T) {
	st := storetest.OpenSQLite(t)
	clk := testenv.NewClock(time.Now().UTC())
	enqueue(t, st, 1, []string{"webhook:flaky"}, clk.Now())

	var tries atomic.Int32
	flaky := SenderFunc(func(context.Context, store.Alert, Payload) error {
		tries.Add(1)
		return errors.New("503 from upstream")
	})
	d := NewDispatcher(st, DispatcherConfig{
		Senders: senders(map[string]Sender{"webhook:flaky": flaky}), Now: clk.Now,
		MaxAttempts: 3, BaseBackoff: time.Minute, MaxBackoff: 10 * time.Minute,
	}, nil)
	ctx := context.Background()

	n, err := d.Tick(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	a := onlyAlert(t, st)
	assert.Equal(t, 1, a.Attempts)
	assert.Equal(t, "503 from upstream", a.LastError)
	assert.False(t, a.Dead)
	wait := a.NextAttempt.Sub(clk.Now())
	assert.InDelta(t, float64(time.Minute), float64(wait), float64(13*time.Second), "first backoff about 1 min")

	// Not due yet: not retried.
	clk.Add(30 * time.Second)
	n, err = d.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)

	clk.Add(time.Minute)
	_, err = d.Tick(ctx)
	require.NoError(t, err)
	a = onlyAlert(t, st)
	assert.Equal(t, 2, a.Attempts)
	wait = a.NextAttempt.Sub(clk.Now())
	assert.InDelta(t, float64(2*time.Minute), float64(wait), float64(25*time.Second), "doubled")

	clk.Add(3 * time.Minute)
	_, err = d.Tick(ctx)
	require.NoError(t, err)
	a = onlyAlert(t, st)
	assert.Equal(t, 3, a.Attempts)
	assert.True(t, a.Dead, "dead-lettered after MaxAttempts")
	assert.Equal(t, int32(3), tries.Load())

	dead, err := st.ListAlerts(ctx, true, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1, "visible to admins")

	clk.Add(time.Hour)
	n, err = d.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "dead alerts are not retried")

	// An admin retries it; this time it goes through.
	require.NoError(t, st.RetryAlert(ctx, a.ID, clk.Now()))
	d2 := NewDispatcher(st, DispatcherConfig{Now: clk.Now, Senders: senders(map[string]Sender{
		"webhook:flaky": SenderFunc(func(context.Context, store.Alert, Payload) error { return nil }),
	})}, nil)
	n, err = d2.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NotNil(t, onlyAlert(t, st).SentAt)
}

// TestRetriedAlertGetsFullBudget: an admin's retry gives a dead-lettered
// alert its tries again (attempts reset): a failure after the retry is
// backed off from the first step, not dead-lettered at once.
func TestRetriedAlertGetsFullBudget(t *testing.T) {
	st := storetest.OpenSQLite(t)
	clk := testenv.NewClock(time.Now().UTC())
	enqueue(t, st, 1, []string{"webhook:flaky"}, clk.Now())
	var tries atomic.Int32
	d := NewDispatcher(st, DispatcherConfig{
		Senders: senders(map[string]Sender{"webhook:flaky": SenderFunc(func(context.Context, store.Alert, Payload) error {
			tries.Add(1)
			return errors.New("503 from upstream")
		})}), Now: clk.Now,
		MaxAttempts: 3, BaseBackoff: time.Minute, MaxBackoff: 10 * time.Minute,
	}, nil)
	ctx := context.Background()
	for range 3 {
		_, err := d.Tick(ctx)
		require.NoError(t, err)
		clk.Add(time.Hour)
	}
	a := onlyAlert(t, st)
	require.True(t, a.Dead)
	require.Equal(t, 3, a.Attempts)

	require.NoError(t, st.RetryAlert(ctx, a.ID, clk.Now()))
	a = onlyAlert(t, st)
	assert.Equal(t, 0, a.Attempts, "the retry resets the attempts")
	assert.WithinDuration(t, clk.Now(), a.NextAttempt, time.Millisecond, "due at once")

	n, err := d.Tick(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	a = onlyAlert(t, st)
	assert.False(t, a.Dead, "one failure after a retry is not the last try")
	assert.Equal(t, 1, a.Attempts)
	wait := a.NextAttempt.Sub(clk.Now())
	assert.InDelta(t, float64(time.Minute), float64(wait), float64(13*time.Second), "the backoff starts again")
	for range 2 {
		clk.Add(time.Hour)
		_, err = d.Tick(ctx)
		require.NoError(t, err)
	}
	a = onlyAlert(t, st)
	assert.True(t, a.Dead, "dead-lettered again after MaxAttempts more tries")
	assert.Equal(t, int32(6), tries.Load())
}

func onlyAlert(t *testing.T, st store.AlertOutbox) store.Alert {
	t.Helper()
	all, err := st.ListAlerts(context.Background(), false, 10)
	require.NoError(t, err)
	require.Len(t, all, 1)
	return all[0]
}

func TestDispatcherPermanentAndUnconfigured(t *testing.T) {
	st := storetest.OpenSQLite(t)
	now := time.Now().UTC()
	enqueue(t, st, 1, []string{"webhook:gone", "webhook:missing"}, now)
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(map[string]Sender{
		"webhook:gone": SenderFunc(func(context.Context, store.Alert, Payload) error { return Permanent(errors.New("answered 404")) }),
	})}, nil)
	_, err := d.Tick(context.Background())
	require.NoError(t, err)
	all, err := st.ListAlerts(context.Background(), false, 10)
	require.NoError(t, err)
	require.Len(t, all, 2)
	for _, a := range all {
		switch a.Channel {
		case "webhook:gone":
			assert.True(t, a.Dead, "permanent failures dead-letter at once")
			assert.Equal(t, 1, a.Attempts)
		case "webhook:missing":
			assert.False(t, a.Dead, "an unconfigured channel is retried (it may be configured later)")
			assert.Contains(t, a.LastError, "not configured")
		}
	}
}

func TestDispatcherSenderPanicIsAFailure(t *testing.T) {
	st := storetest.OpenSQLite(t)
	enqueue(t, st, 1, []string{"email"}, time.Now().UTC())
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(map[string]Sender{
		"email": SenderFunc(func(context.Context, store.Alert, Payload) error { panic("bug") }),
	})}, nil)
	_, err := d.Tick(context.Background())
	require.NoError(t, err)
	assert.Contains(t, onlyAlert(t, st).LastError, "panicked")
}

// TestTwoDispatchersNeverSendTwice runs two dispatchers, each on its own
// store handle to one database (two replicas), on SQLite and PostgreSQL, and
// checks every alert is sent exactly once.
func TestTwoDispatchersNeverSendTwice(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			replicas := storetest.Replicas(t, b.URL(t), 2)
			const n = 200
			enqueue(t, replicas[0], n, []string{"webhook:ops"}, time.Now().UTC())

			var mu sync.Mutex
			sent := map[int64]int{}
			snd := SenderFunc(func(_ context.Context, a store.Alert, _ Payload) error {
				time.Sleep(time.Millisecond)
				mu.Lock()
				sent[a.ID]++
				mu.Unlock()
				return nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			for i, st := range replicas {
				d := NewDispatcher(st, DispatcherConfig{Owner: fmt.Sprintf("replica-%d", i), Batch: 7, PollInterval: 5 * time.Millisecond,
					Senders: senders(map[string]Sender{"webhook:ops": snd})}, nil)
				wg.Go(func() { d.Run(ctx) })
			}
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(sent) == n
			}, 30*time.Second, 10*time.Millisecond)
			cancel()
			wg.Wait()
			for id, c := range sent {
				assert.Equal(t, 1, c, "alert %d sent %d times", id, c)
			}
			all, err := replicas[1].ListAlerts(context.Background(), false, 1000)
			require.NoError(t, err)
			for _, a := range all {
				assert.NotNil(t, a.SentAt, "alert %d marked sent", a.ID)
			}
		})
	}
}

func TestRunStopsAndLeavesInFlightForLater(t *testing.T) {
	st := storetest.OpenSQLite(t)
	enqueue(t, st, 1, []string{"email"}, time.Now().UTC())
	started := make(chan struct{})
	slow := SenderFunc(func(ctx context.Context, _ store.Alert, _ Payload) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(map[string]Sender{"email": slow}), Lease: time.Second, SendTimeout: 500 * time.Millisecond}, nil)
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	a := onlyAlert(t, st)
	assert.Nil(t, a.SentAt)
	assert.Zero(t, a.Attempts, "an abandoned delivery is not counted as a failure")

	// After the lease, another dispatcher delivers it.
	var ok atomic.Bool
	d2 := NewDispatcher(st, DispatcherConfig{Now: func() time.Time { return time.Now().Add(3 * time.Minute) },
		Senders: senders(map[string]Sender{"email": SenderFunc(func(context.Context, store.Alert, Payload) error { ok.Store(true); return nil })})}, nil)
	n, err := d2.Tick(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.True(t, ok.Load())
}

func TestDispatcherWithRealChannels(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ms := startMailServer(t, false)
	cfg := ChannelsConfig{Email: ptr(ms.config())}
	s, err := cfg.Build()
	require.NoError(t, err)
	enqueue(t, st, 2, cfg.Names(), time.Now().UTC())
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(s)}, nil)
	n, err := d.Tick(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Len(t, ms.received(), 2)

	// The SMTP server refuses: the alert is dead-lettered, not lost.
	ms.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "refused"}
	enqueue(t, st, 1, cfg.Names(), time.Now().UTC())
	_, err = d.Tick(context.Background())
	require.NoError(t, err)
	dead, err := st.ListAlerts(context.Background(), true, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Contains(t, dead[0].LastError, "refused")
}

func ptr[T any](v T) *T { return &v }

func TestBackoff(t *testing.T) {
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 60 * time.Second, 100: 60 * time.Second} {
		got := Backoff(attempts, time.Second, time.Minute)
		assert.InDelta(t, float64(want), float64(got), float64(want)/5+1, "attempt %d", attempts)
		assert.LessOrEqual(t, got, time.Minute)
	}
}

func TestNewAlertsAndDecode(t *testing.T) {
	now := time.Now()
	a, err := NewAlerts(samplePayload(), []string{"email", "webhook:x"}, now)
	require.NoError(t, err)
	require.Len(t, a, 2)
	assert.Equal(t, EventLoginSuspicious, a[0].Event)
	assert.Equal(t, "webhook:x", a[1].Channel)
	p, err := DecodePayload(a[1])
	require.NoError(t, err)
	assert.Equal(t, samplePayload(), p)
	_, err = DecodePayload(store.Alert{Payload: []byte("{")})
	assert.Error(t, err)
	none, err := NewAlerts(samplePayload(), nil, now)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestLeaseCoversABatch(t *testing.T) {
	d := NewDispatcher(nil, DispatcherConfig{Batch: 20, Concurrency: 4, SendTimeout: 30 * time.Second, Lease: time.Second}, nil)
	assert.GreaterOrEqual(t, d.cfg.Lease, 6*30*time.Second, "5 rounds of sends plus one fit in the lease")
	d = NewDispatcher(nil, DispatcherConfig{}, nil)
	assert.GreaterOrEqual(t, d.cfg.Lease, 2*time.Minute)
	assert.Greater(t, d.cfg.Lease, d.cfg.SendTimeout)
}

// TestDispatcherWebhookRecovers: a webhook answering 500, then timing out,
// then 200 gets the alert exactly once, after two retries.
func TestDispatcherWebhookRecovers(t *testing.T) {
	st := storetest.OpenSQLite(t)
	clk := testenv.NewClock(time.Now().UTC())
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			http.Error(w, "upstream down", http.StatusBadGateway)
		case 2:
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
			}
		default:
			assert.Equal(t, r.Header.Get(HeaderDelivery), "1", "same delivery id on every try")
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	cfg := ChannelsConfig{Webhooks: []WebhookConfig{{Name: "ops", URL: srv.URL, Secret: "k", Timeout: 200 * time.Millisecond}}}
	s, err := cfg.Build()
	require.NoError(t, err)
	enqueue(t, st, 1, cfg.Names(), clk.Now())
	d := NewDispatcher(st, DispatcherConfig{Senders: senders(s), Now: clk.Now, BaseBackoff: time.Minute}, nil)
	ctx := context.Background()
	for i := range 3 {
		_, err := d.Tick(ctx)
		require.NoError(t, err)
		a := onlyAlert(t, st)
		if i < 2 {
			assert.Nil(t, a.SentAt)
			assert.Equal(t, i+1, a.Attempts)
			assert.False(t, a.Dead)
		} else {
			assert.NotNil(t, a.SentAt)
		}
		clk.Add(10 * time.Minute)
	}
	assert.Equal(t, int32(3), calls.Load())
}
