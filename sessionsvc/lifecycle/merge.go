package lifecycle

import (
	"context"
	"log/slog"
	"time"
)

// ActivityMerger is what the merger needs of the store.
type ActivityMerger interface {
	MergeActivity(ctx context.Context, max int) (int, error)
}

// MergeEvery is the merger's default interval: with activity below the
// merge rate, the active and idle filters and the lastActive sort of the
// session lists lag the latest marks by about this much.
const MergeEvery = time.Second

// mergeRound bounds one call of the store's MergeActivity (it works in
// short transactions of its own).
const mergeRound = 10_000

// RunMerger moves the pending activity marks into the sessions' stored
// lastActive until ctx ends: every interval (MergeEvery when 0), and
// straight on while a round found a full batch pending. Several replicas
// may run it on one PostgreSQL (each takes marks the others do not hold).
func RunMerger(ctx context.Context, st ActivityMerger, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = MergeEvery
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		n, err := st.MergeActivity(ctx, mergeRound)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			logger.Warn("merging activity failed", "err", err, "merged", n)
		case err == nil && failing:
			logger.Info("merging activity works again")
		}
		failing = err != nil
		if err == nil && n >= mergeRound {
			continue // a backlog: merge on
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
