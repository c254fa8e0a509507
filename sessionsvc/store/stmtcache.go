package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// stmtCache keeps prepared read statements by SQL text. On SQLite,
// preparing (parsing) a statement costs more than running a point query,
// so the hot read paths reuse prepared statements; database/sql prepares
// a *sql.Stmt lazily on each pooled connection. (pgx caches prepared
// statements itself, so PostgreSQL does not use this.)
type stmtCache struct {
	m sync.Map // string -> *sql.Stmt
	n atomic.Int32
}

// maxCachedStmts bounds the cache: query shapes are few (filters build a
// handful of variants), but never let it grow without limit.
const maxCachedStmts = 256

func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	if v, ok := c.m.Load(q); ok {
		return v.(*sql.Stmt)
	}
	if c.n.Load() >= maxCachedStmts {
		return nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil // the caller runs the query unprepared and gets the error there
	}
	if v, loaded := c.m.LoadOrStore(q, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt)
	}
	c.n.Add(1)
	return st
}

func (c *stmtCache) close() {
	c.m.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		c.m.Delete(k)
		return true
	})
	c.n.Store(0)
}

// readRow runs a single-row read, prepared where that pays.
func (s *sqlStore) readRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s.d.name() == "sqlite" {
		if st := s.stmts.get(ctx, s.r, q); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return s.r.QueryRowContext(ctx, q, args...)
}

// read runs a read query, prepared where that pays.
func (s *sqlStore) read(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s.d.name() == "sqlite" {
		if st := s.stmts.get(ctx, s.r, q); st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return s.r.QueryContext(ctx, q, args...)
}
