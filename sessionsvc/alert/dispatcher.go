package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Sender delivers one alert on one channel. An error wrapped with Permanent
// dead-letters the alert at once (retrying cannot help); any other error is
// retried with backoff.
type Sender interface {
	Send(ctx context.Context, a store.Alert, p Payload) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, a store.Alert, p Payload) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, a store.Alert, p Payload) error { return f(ctx, a, p) }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// DispatcherConfig configures a Dispatcher. Zero values take the defaults.
type DispatcherConfig struct {
	// Owner names this dispatcher in leases (default: hostname-pid-random).
	Owner string
	// Senders returns the channel senders by channel name ("email",
	// "webhook:<name>"); it is called on every pass so channels can change
	// with the settings. An alert for a channel without a sender fails
	// (and is retried, then dead-lettered): it is never dropped silently.
	Senders func() map[string]Sender
	// Batch: alerts leased per pass (default 20).
	Batch int
	// Lease: how long a claimed alert is reserved. It is raised to cover a
	// whole batch of sends ((Batch/Concurrency + 1) × SendTimeout + 10 s,
	// at least 2 min) so a slow send is never claimed twice.
	Lease time.Duration
	// SendTimeout bounds one delivery (default 30 s).
	SendTimeout time.Duration
	// PollInterval between passes when the queue is empty (default 2 s).
	PollInterval time.Duration
	// MaxAttempts before an alert is dead-lettered (default 8).
	MaxAttempts int
	// BaseBackoff is the delay after the first failure, doubled per
	// attempt with ±20 % jitter (default 30 s), capped at MaxBackoff (default 1 h).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Concurrency: deliveries in flight at once (default 4).
	Concurrency int
	Now         func() time.Time
}

// DefaultMaxAttempts is how many tries an alert gets before it is dead-lettered.
const DefaultMaxAttempts = 8

func (c *DispatcherConfig) defaults() {
	if c.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if c.Batch <= 0 {
		c.Batch = 20
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	// A leased alert may wait for a free slot before its send starts: the
	// lease covers every round of the batch, so no other dispatcher claims
	// an alert this one is still going to send.
	rounds := (c.Batch + c.Concurrency - 1) / c.Concurrency
	if minLease := time.Duration(rounds+1)*c.SendTimeout + 10*time.Second; c.Lease < minLease {
		c.Lease = max(minLease, 2*time.Minute)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Senders == nil {
		c.Senders = func() map[string]Sender { return nil }
	}
}

// Dispatcher delivers the outbox. Several dispatchers (replicas) may run on
// one store: the store's lease makes sure each alert is held by one at a time.
type Dispatcher struct {
	st   store.AlertOutbox
	cfg  DispatcherConfig
	log  *slog.Logger
	wake chan struct{}
}

// NewDispatcher builds a dispatcher; Run starts it.
func NewDispatcher(st store.AlertOutbox, cfg DispatcherConfig, logger *slog.Logger) *Dispatcher {
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{st: st, cfg: cfg, log: logger.With("component", "alert-dispatcher", "owner", cfg.Owner), wake: make(chan struct{}, 1)}
}

// Wake asks for a pass now (e.g. right after alerts were queued). Never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers alerts until ctx is done. Deliveries in flight when ctx ends
// are abandoned; their lease expires and they are delivered later.
func (d *Dispatcher) Run(ctx context.Context) {
	d.log.Info("alert dispatcher started", "maxAttempts", d.cfg.MaxAttempts, "lease", d.cfg.Lease)
	defer d.log.Info("alert dispatcher stopped")
	backoff := d.cfg.PollInterval
	for {
		n, err := d.Tick(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := d.cfg.PollInterval
		switch {
		case err != nil:
			d.log.Warn("alert pass failed", "error", err)
			backoff = min(backoff*2, time.Minute)
			wait = backoff
		case n >= d.cfg.Batch:
			backoff = d.cfg.PollInterval
			continue // more may be due
		default:
			backoff = d.cfg.PollInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Tick runs one pass: lease due alerts, deliver them, record the outcome.
// It returns how many alerts it leased.
func (d *Dispatcher) Tick(ctx context.Context) (int, error) {
	alerts, err := d.st.ClaimAlerts(ctx, d.cfg.Owner, d.cfg.Batch, d.cfg.Now(), d.cfg.Lease)
	if err != nil {
		return 0, fmt.Errorf("claim alerts: %w", err)
	}
	if len(alerts) == 0 {
		return 0, nil
	}
	// Sends that would start too late to finish within the lease are left
	// for the next claim.
	startBy := time.Now().Add(d.cfg.Lease - d.cfg.SendTimeout - 5*time.Second)
	senders := d.cfg.Senders()
	sem := make(chan struct{}, d.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, a := range alerts {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if time.Now().After(startBy) {
				d.log.Warn("alert left for a later pass: its lease is nearly over", "alert", a.ID)
				return
			}
			d.deliver(ctx, a, senders[a.Channel])
		})
	}
	wg.Wait()
	return len(alerts), nil
}

func (d *Dispatcher) deliver(ctx context.Context, a store.Alert, s Sender) {
	var err error
	switch p, perr := DecodePayload(a); {
	case perr != nil:
		err = Permanent(perr)
	case s == nil:
		err = fmt.Errorf("channel %q is not configured", a.Channel)
	default:
		sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		err = safeSend(sctx, s, a, p)
		cancel()
	}
	if ctx.Err() != nil && err != nil {
		// Shutting down: leave the lease to expire, the alert is retried later.
		return
	}
	// Record the outcome even if ctx ends now: the send happened.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := d.cfg.Now()
	if err == nil {
		if merr := d.st.MarkAlertSent(mctx, a.ID, now); merr != nil {
			d.log.Error("alert sent but not marked; it may be sent again", "alert", a.ID, "error", merr)
		}
		d.log.Debug("alert sent", "alert", a.ID, "event", a.Event, "channel", a.Channel)
		return
	}
	attempts := a.Attempts + 1
	dead := attempts >= d.cfg.MaxAttempts || IsPermanent(err)
	next := now.Add(Backoff(attempts, d.cfg.BaseBackoff, d.cfg.MaxBackoff))
	msg := err.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	if merr := d.st.MarkAlertFailed(mctx, a.ID, msg, next, dead); merr != nil {
		d.log.Error("recording alert failure failed", "alert", a.ID, "error", merr)
	}
	if dead {
		d.log.Error("alert dead-lettered", "alert", a.ID, "event", a.Event, "channel", a.Channel,
			"attempts", attempts, "permanent", IsPermanent(err), "error", err)
		return
	}
	d.log.Warn("alert delivery failed; will retry", "alert", a.ID, "event", a.Event, "channel", a.Channel,
		"attempts", attempts, "next", next.UTC().Format(time.RFC3339), "error", err)
}

// safeSend turns a panicking sender into an error.
func safeSend(ctx context.Context, s Sender, a store.Alert, p Payload) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sender panicked: %v", r)
		}
	}()
	return s.Send(ctx, a, p)
}

// Backoff is the delay before try attempts+1: base·2^(attempts-1) with
// ±20 % jitter, at most max.
func Backoff(attempts int, base, maxDelay time.Duration) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	d := float64(base) * math.Pow(2, float64(min(attempts-1, 40)))
	d = math.Min(d, float64(maxDelay))
	d *= 0.8 + 0.4*mrand.Float64()
	return min(time.Duration(d), maxDelay)
}
