package store

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// growthAnalyzer re-ANALYZEs a PostgreSQL table once this process's own
// writes have grown it by as many rows as it held at its last ANALYZE
// (at least minAnalyzeRows): the statistics then never describe a table
// less than half its size.
//
// Why: pgx runs every statement as a named prepared statement, and
// PostgreSQL switches a prepared statement to a generic plan after five
// executions when that plan costs no more than the custom ones did. On a
// fresh revocation_log that plan is a sequential scan (the table is empty)
// and it is kept until something invalidates it — an ANALYZE of the table.
// A bulk revocation on a new database then scanned the whole log in every
// append's superseding UPDATE: 100,000 keys took 70–86 s instead of a few
// seconds. Autovacuum's auto-analyze would replan it eventually (not
// before its next round, and never where autovacuum is off); this does it
// as the table grows. ANALYZE samples at most 30,000 rows, whatever the
// table's size, and takes a lock that blocks no reader or writer.
type growthAnalyzer struct {
	db    *sql.DB
	table string // a constant identifier, never user input
	log   *slog.Logger

	mu      sync.Mutex
	added   int64 // rows written since the last ANALYZE (or since open)
	next    int64 // ANALYZE when added reaches this
	running bool
	off     bool // ANALYZE failed outright: stop trying (a user who does not own the table gets a warning, not an error)

	stop    chan struct{}
	done    sync.WaitGroup
	stopped sync.Once
}

// minAnalyzeRows is the least growth that triggers an ANALYZE: below it
// every plan is cheap.
const minAnalyzeRows = 1000

// analyzeTimeout bounds one ANALYZE.
const analyzeTimeout = time.Minute

// newGrowthAnalyzer starts counting writes to table, whose statistics
// describe rows rows (pg_class.reltuples; negative when never analyzed).
func newGrowthAnalyzer(db *sql.DB, table string, rows int64, log *slog.Logger) *growthAnalyzer {
	return &growthAnalyzer{db: db, table: table, log: log, next: max(minAnalyzeRows, rows), stop: make(chan struct{})}
}

// startLogAnalyzer sets up the revocation log's growthAnalyzer, from the
// statistics the log has now.
func (s *sqlStore) startLogAnalyzer(ctx context.Context) error {
	var rows float64
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE((SELECT reltuples FROM pg_class WHERE oid = to_regclass('revocation_log')), 0)`).Scan(&rows); err != nil {
		return err
	}
	s.logGrowth = newGrowthAnalyzer(s.w, "revocation_log", int64(rows), s.log)
	return nil
}

// grew counts n rows written to the table and starts an ANALYZE in the
// background when they reach the threshold (one at a time; none after
// close). A nil analyzer (SQLite) counts nothing.
func (g *growthAnalyzer) grew(n int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.added += int64(n)
	if g.added < g.next || g.running || g.off {
		return
	}
	select {
	case <-g.stop:
		return
	default:
	}
	g.running = true
	g.done.Add(1)
	go g.analyze()
}

func (g *growthAnalyzer) analyze() {
	defer g.done.Done()
	ctx, cancel := context.WithTimeout(context.Background(), analyzeTimeout)
	defer cancel()
	go func() {
		select {
		case <-g.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.Now()
	var rows float64
	_, err := g.db.ExecContext(ctx, `ANALYZE `+g.table)
	if err == nil {
		err = g.db.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)`, g.table).Scan(&rows)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running = false
	switch {
	case err == nil:
		g.added, g.next = 0, max(minAnalyzeRows, int64(rows))
		g.log.Debug("table analyzed after growth", "table", g.table, "rows", int64(rows), "took", time.Since(t))
	case ctx.Err() != nil:
		// Stopped or timed out: the next write tries again.
	default:
		g.off = true
		g.log.Warn("ANALYZE after growth failed; leaving statistics to autovacuum", "table", g.table, "err", err)
	}
}

// close stops counting and waits for a running ANALYZE (cancelled).
func (g *growthAnalyzer) close() {
	if g == nil {
		return
	}
	g.stopped.Do(func() {
		g.mu.Lock()
		close(g.stop)
		g.mu.Unlock()
		g.done.Wait()
	})
}
