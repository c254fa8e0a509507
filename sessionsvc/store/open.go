package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DefaultDatabaseURL is used when DATABASE_URL is empty.
const DefaultDatabaseURL = "sqlite://./data/meshsession.db"

// DefaultRevocationTTL bounds a revocation entry whose token expiry is
// unknown (the plugin drops it after this long).
const DefaultRevocationTTL = 30 * 24 * time.Hour

// Open opens (and migrates) the store named by databaseURL:
// "sqlite://path" (the directory is created) or "postgres://…" /
// "postgresql://…". An empty URL means DefaultDatabaseURL.
func Open(ctx context.Context, databaseURL string, logger *slog.Logger) (Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if databaseURL == "" {
		databaseURL = DefaultDatabaseURL
	}
	switch {
	case strings.HasPrefix(databaseURL, "sqlite://"), strings.HasPrefix(databaseURL, "sqlite:"):
		return openSQLite(ctx, databaseURL, logger)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return openPostgres(ctx, databaseURL, logger)
	default:
		return nil, fmt.Errorf("open store: unsupported DATABASE_URL scheme in %q (want sqlite://path or postgres://…)", redactURL(databaseURL))
	}
}

// redactURL hides a password in a database URL for error messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func openSQLite(ctx context.Context, databaseURL string, logger *slog.Logger) (Store, error) {
	rest := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//")
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return nil, fmt.Errorf("open store: empty sqlite path in %q", databaseURL)
	}
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("open store: create directory %s: %w", dir, err)
			}
		}
	}
	base := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	if query != "" {
		base += "&" + query
	}
	// One writer connection serialises writes inside the process (no
	// SQLITE_BUSY between our own goroutines); BEGIN IMMEDIATE takes the
	// write lock up front so a transaction never has to upgrade (which
	// could deadlock with another process, e.g. the token CLI).
	// Page caches: SQLite's default is 2 MB per connection, far below the
	// hot index pages of a million sessions (each index a writer touches
	// would otherwise be re-read from the OS on every statement).
	// No write transaction checkpoints the WAL (the checkpointer does, from
	// its own connection, see walCheckpointer); the WAL file is cut back to
	// 64 MiB when it restarts.
	w, err := sql.Open("sqlite", base+"&_txlock=immediate&_pragma=cache_size(-65536)"+
		"&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(67108864)")
	if err != nil {
		return nil, fmt.Errorf("open store: sqlite writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// Readers map the file (up to SQLite's most, about 2 GiB) instead of
	// copying each page they read into their own cache: a page of 1,000
	// sessions reads rows and key-index entries spread over the whole file,
	// each a pread from the OS cache otherwise. They only read (query_only),
	// so the map is never written through.
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)&_pragma=cache_size(-16384)&_pragma=mmap_size(2147418112)")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open store: sqlite reader: %w", err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &sqlStore{w: w, r: r, d: sqliteDialect{}, log: logger, gate: &writeGate{}}
	if err := s.init(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.logStmts.prepare(ctx, w); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store: prepare log statements: %w", err)
	}
	if path != ":memory:" {
		if err := s.startCheckpointer(base); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("open store: sqlite checkpointer: %w", err)
		}
	}
	s.startSignal(nil)
	logger.Info("store opened", "driver", "sqlite", "path", path)
	return s, nil
}

func openPostgres(ctx context.Context, databaseURL string, logger *slog.Logger) (Store, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open store: parse postgres url %q: %w", redactURL(databaseURL), err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &sqlStore{w: db, r: db, d: postgresDialect{}, log: logger, searchPageMin: SelectiveSearchLimit}
	if err := s.init(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.ensureTrigram(ctx)
	if err := s.startLogAnalyzer(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store: read revocation_log statistics: %w", err)
	}
	s.startSignal(cfg.Copy())
	logger.Info("store opened", "driver", "postgres", "host", cfg.Host, "database", cfg.Database)
	return s, nil
}
