// Package lifecycle runs sessionsvc's periodic jobs: ending idle sessions
// (reason idle), ending sessions older than the maximum age (reason
// expired), purging ended sessions after the retention period, and
// compacting revocation log entries whose tokens have all expired; and,
// every second (RunMerger), merging the sessions' pending activity marks
// into their stored lastActive.
//
// Every job is one idempotent SQL statement set guarded by the store's log
// lock, so several replicas on one PostgreSQL may run them at the same
// time: an already-ended session is not ended twice and a purged row is
// simply gone for the second replica.
package lifecycle

import (
	"context"
	"log/slog"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Policy is what one run enforces. A zero duration disables a job; a
// negative Retention keeps ended sessions forever.
type Policy struct {
	IdleAfter time.Duration // end sessions not seen for this long (reason idle)
	MaxAge    time.Duration // end sessions older than this (reason expired)
	Retention time.Duration // delete ended sessions this long after they ended
}

// Store is what the jobs need of the store: ending sessions by age,
// purging ended ones, compacting the revocation log and pruning the
// login counters and the refused logins.
type Store interface {
	store.Retention
	Compact(ctx context.Context, now time.Time) (int, error)
	PruneLoginCounters(ctx context.Context, before, now time.Time) (int, error)
	PruneLoginRefusals(ctx context.Context, before time.Time) (int, error)
}

// Config configures a Runner.
type Config struct {
	Store    Store
	Logger   *slog.Logger
	Interval time.Duration // default 1 minute
	// Policy returns the policy for a run (it may follow settings that
	// admins change at run time).
	Policy func(ctx context.Context) Policy
	// OnEnded is called with sessions the run ended (for alerts or metrics).
	OnEnded func(ctx context.Context, ids []string, reason string)
	Now     func() time.Time
}

// Stats reports what one run did.
type Stats struct {
	Idle, Expired, Purged, Compacted int
}

// Runner runs the jobs.
type Runner struct {
	cfg Config
}

// New returns a Runner.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == nil {
		cfg.Policy = func(context.Context) Policy {
			return Policy{IdleAfter: 15 * time.Minute, MaxAge: 30 * 24 * time.Hour, Retention: 90 * 24 * time.Hour}
		}
	}
	return &Runner{cfg: cfg}
}

// RunOnce runs every job once. It goes on after a failing job and returns
// the first error.
func (r *Runner) RunOnce(ctx context.Context) (Stats, error) {
	var st Stats
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	p := r.cfg.Policy(ctx)
	now := r.cfg.Now().UTC()
	// end ends, through endBefore, the sessions past age (none when age is
	// 0), tells OnEnded, and counts them.
	end := func(age time.Duration, endBefore func(ctx context.Context, before, now time.Time) ([]string, error), reason string) int {
		if age <= 0 {
			return 0
		}
		ids, err := endBefore(ctx, now.Add(-age), now)
		keep(err)
		if len(ids) > 0 && r.cfg.OnEnded != nil {
			r.cfg.OnEnded(ctx, ids, reason)
		}
		return len(ids)
	}
	st.Idle = end(p.IdleAfter, r.cfg.Store.EndIdle, "idle")
	st.Expired = end(p.MaxAge, r.cfg.Store.EndOld, "expired")
	if p.Retention > 0 {
		n, err := r.cfg.Store.Purge(ctx, now.Add(-p.Retention))
		keep(err)
		st.Purged = n
		// The refused logins (the dashboard's analytics) are kept as long.
		_, err = r.cfg.Store.PruneLoginRefusals(ctx, now.Add(-p.Retention))
		keep(err)
	}
	n, err := r.cfg.Store.Compact(ctx, now)
	keep(err)
	st.Compacted = n
	// Failed-login counters outlive any lockout window (at most 7 days) by a day.
	_, err = r.cfg.Store.PruneLoginCounters(ctx, now.Add(-8*24*time.Hour), now)
	keep(err)
	return st, firstErr
}

// Run runs the jobs every Interval until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		st, err := r.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.cfg.Logger.Warn("lifecycle run failed", "err", err, "idle", st.Idle, "expired", st.Expired, "purged", st.Purged)
		case st != (Stats{}):
			r.cfg.Logger.Info("lifecycle run", "idle", st.Idle, "expired", st.Expired, "purged", st.Purged, "compacted", st.Compacted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
