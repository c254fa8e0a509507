// Package storetest is the contract test suite every store.Store
// implementation passes, plus helpers that give tests a fresh SQLite file or
// a fresh PostgreSQL schema.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// DefaultPostgresURL is used when MESHSESSION_TEST_POSTGRES is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SQLiteURL returns a database URL for a new SQLite file in a temp dir.
func SQLiteURL(tb testing.TB) string {
	tb.Helper()
	return "sqlite://" + filepath.Join(tb.TempDir(), "meshsession.db")
}

// postgresRequired reports whether an unreachable PostgreSQL must fail the test.
func postgresRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("MESHSESSION_REQUIRE_POSTGRES") == "1"
}

// PostgresURL creates a fresh schema on the test PostgreSQL server
// (MESHSESSION_TEST_POSTGRES) and returns a URL whose search_path points at
// it; the schema is dropped when the test ends. When the server is
// unreachable the test is skipped, or fails under CI=true or
// MESHSESSION_REQUIRE_POSTGRES=1.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "mstest_" + hex.EncodeToString(b[:])
	db, u := postgresSchema(tb, schema)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`)
		_ = db.Close()
	})
	return u
}

// KeptURL returns the URL of a database that outlives the test, for
// benchmarks that reuse a large seeded database between runs: on SQLite
// the file <dir>/sqlite-<name>.db, on PostgreSQL the schema bench_<name> of
// the test server (created if missing, never dropped). backend is "sqlite"
// or "postgres"; name is lower-case letters, digits and underscores.
func KeptURL(tb testing.TB, backend, dir, name string) string {
	tb.Helper()
	if backend == "sqlite" {
		return "sqlite://" + filepath.Join(dir, "sqlite-"+name+".db")
	}
	db, u := postgresSchema(tb, "bench_"+name)
	_ = db.Close()
	return u
}

// postgresSchema connects to the test server (skipping or failing the test
// when it is unreachable, see PostgresURL), creates schema if missing, and
// returns the connection and a URL whose search_path points at the schema.
func postgresSchema(tb testing.TB, schema string) (*sql.DB, string) {
	tb.Helper()
	base := os.Getenv("MESHSESSION_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgresURL
	}
	cfg, err := pgx.ParseConfig(base)
	require.NoError(tb, err, "parse MESHSESSION_TEST_POSTGRES")
	cfg.ConnectTimeout = 3 * time.Second
	db := stdlib.OpenDB(*cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		if postgresRequired() {
			tb.Fatalf("PostgreSQL at %s is unreachable (required by CI/MESHSESSION_REQUIRE_POSTGRES): %v", base, err)
		}
		tb.Skipf("PostgreSQL at %s is unreachable: %v", base, err)
	}
	_, err = db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
	require.NoError(tb, err, "create schema")
	u, err := url.Parse(base)
	require.NoError(tb, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return db, u.String()
}

// OpenSQLite opens a store on a fresh SQLite file, closed at the end of the test.
func OpenSQLite(tb testing.TB) store.Store {
	tb.Helper()
	return OpenURL(tb, SQLiteURL(tb))
}

// OpenPostgres opens a store on a fresh PostgreSQL schema, closed at the end of the test.
func OpenPostgres(tb testing.TB) store.Store {
	tb.Helper()
	return OpenURL(tb, PostgresURL(tb))
}

// OpenURL opens a store on u (another replica, when u is already open),
// closed at the end of the test.
func OpenURL(tb testing.TB, u string) store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), u, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// Backend is one of the two implementations: its name and its openers.
type Backend struct {
	Name string
	Open func(testing.TB) store.Store // a fresh, empty store
	URL  func(testing.TB) string      // a fresh, empty database, for tests that open replicas
}

// Backends lists the two implementations by name with their openers.
func Backends() []Backend {
	return []Backend{
		{"sqlite", OpenSQLite, SQLiteURL},
		{"postgres", OpenPostgres, PostgresURL},
	}
}

// Each runs fn as a subtest on each implementation, with a fresh store.
func Each(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}
