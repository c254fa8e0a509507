package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// runSeed fills a database with synthetic sessions (sessionsvc seed -n N),
// for benchmarks and demos. It writes sessions and their keys only: no
// revocations, no alerts.
func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sf := newStoreFlags("sessionsvc seed", stderr)
	fs := sf.fs
	n := fs.Int("n", 10_000, "number of synthetic sessions to add")
	from := fs.Int("from", 0, "index of the first session (seed again with --from=<previous n> to add more)")
	users := fs.Int("users", 0, "distinct users (default n/4)")
	active := fs.Float64("active", 0.6, "share of sessions left active (the rest ended: logouts, terminations)")
	if help, err := sf.parse(args); help || err != nil {
		return err
	}
	if *n <= 0 || *from < 0 || *users < 0 || *active <= 0 || *active > 1 {
		return errors.New("seed: -n must be positive, -from and -users not negative, -active in (0, 1]")
	}
	st, err := sf.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	last := start
	err = store.Seed(ctx, st, store.SeedOptions{N: *n, From: *from, Users: *users, ActiveShare: *active}, func(done int) {
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(stdout, "  %d / %d\n", done, *n)
		}
	})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "seeded %d sessions (keys %s … %s) in %s, %.0f sessions/s\n",
		*n, store.SeedKey(*from), store.SeedKey(*from+*n-1), el.Round(time.Millisecond), float64(*n)/el.Seconds())
	return nil
}
