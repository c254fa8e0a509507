package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sqlStore implements Store over database/sql for both dialects. On SQLite
// w is a single-connection writer pool and r a read-only pool; on
// PostgreSQL both are the same pool.
type sqlStore struct {
	w, r          *sql.DB
	d             dialect
	log           *slog.Logger
	epoch         string
	latestVersion int
	feed          feedCache
	stmts         stmtCache
	gate          *writeGate       // SQLite only: orders writers by priority
	signal        feedSignal       // wakes long-poll waiters when the log moves
	trgm          bool             // PostgreSQL: the pg_trgm search index exists
	searchPageMin int              // PostgreSQL: a search page walks session_search when the trigram index expects more matches (SelectiveSearchLimit; tests lower it)
	ckpt          *walCheckpointer // SQLite: checkpoints the WAL off the write path
	revokes       revokeGroup      // group commit of concurrent RevokeKeys
	logStmts      logStmts         // SQLite: the writer's prepared log statements
	flushing      atomic.Int32     // activity flushes in progress (the merger yields to them)
	logGrowth     *growthAnalyzer  // PostgreSQL: re-ANALYZEs revocation_log as appends grow it
	seqClock      func() time.Time // the clock seqs follow (nil: time.Now; tests set it), see logseq.go
	pgSeqRaise    string           // PostgreSQL: raises the log's sequence to $1 (postgresSeqSQL)
	pgSeqRead     string           // PostgreSQL: reads the log's sequence
	seqGaps       []seqGap         // seq ranges no entry of this timeline has (set at open)
}

// Dialect reports "sqlite" or "postgres".
func (s *sqlStore) Dialect() string { return s.d.name() }

// wrap classifies a database error: ErrNotFound for no rows, ErrConflict for
// unique violations, ErrUnavailable when the database is down, locked or
// closed; anything else keeps its message.
func (s *sqlStore) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	case s.d.isConflict(err):
		return fmt.Errorf("%s: %w: %v", op, ErrConflict, err)
	case s.d.isUnavailable(err):
		return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// NewSessionID returns a fresh "sess_…" id (128 random bits).
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "sess_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// numbered returns "$from, …, $from+n-1".
func numbered(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$")
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// placeholders returns the placeholders of arguments from..from+n-1. On
// SQLite they are positional "?", so they must follow every earlier
// argument of the statement in order.
func (s *sqlStore) placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.d.bindvar(from + i))
	}
	return b.String()
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return s.wrap("ping", err)
	}
	if s.w != s.r {
		if err := s.w.PingContext(ctx); err != nil {
			return s.wrap("ping writer", err)
		}
	}
	return s.checkSchema(ctx)
}

func (s *sqlStore) Close() error {
	s.signal.close()
	s.logGrowth.close()
	s.stmts.close()
	s.logStmts.close()
	ckErr := s.ckpt.close()
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	if err == nil {
		err = ckErr
	}
	return err
}

func (s *sqlStore) Epoch(ctx context.Context) (string, error) {
	return s.epoch, nil
}

// writeTx runs fn in a write transaction of normal priority.
func (s *sqlStore) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.writeTxPrio(ctx, prioNormal, op, fn)
}

// writeTxPrio runs fn in a write transaction. On SQLite the write
// connection is taken through the priority gate. Any committed write other
// than bulk work may have appended to the revocation log, so the feed's
// waiters are told to look (PostgreSQL tells them through NOTIFY instead).
func (s *sqlStore) writeTxPrio(ctx context.Context, p priority, op string, fn func(tx *sql.Tx) error) error {
	if s.gate != nil {
		if err := s.gate.acquire(ctx, p); err != nil {
			return s.wrap(op, err)
		}
		defer s.gate.release()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(op+": commit", err)
	}
	if p != prioBulk && s.gate != nil {
		s.signal.poke()
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

// scanAll reads every row with scan and closes rows.
func scanAll[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// readAll runs query q on the read pool and scans every row with scan;
// errors are wrapped with op.
func readAll[T any](ctx context.Context, s *sqlStore, op string, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := s.read(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	out, err := scanAll(rows, scan)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// stringArgs turns strings into statement arguments.
func stringArgs(xs []string) []any {
	args := make([]any, len(xs))
	for i, x := range xs {
		args[i] = x
	}
	return args
}

func nonEmpty(keys []string) []string {
	out := keys[:0:0]
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if k == "" {
			continue
		}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, k)
	}
	return out
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// execOne runs a statement that must change exactly one row (ErrNotFound otherwise).
func (s *sqlStore) execOne(ctx context.Context, op, q string, args ...any) error {
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
