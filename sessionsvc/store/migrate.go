package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the dialect's embedded migrations in version order.
// Files are named NNNN_description.sql.
func migrations(dialectName string) ([]migration, error) {
	dir := path.Join("migrations", dialectName)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("duplicate migration version %d", out[i].version)
		}
	}
	return out, nil
}

// init applies pending migrations and loads (or creates) the epoch. It runs
// in one transaction that, on PostgreSQL, holds an advisory lock, so two
// replicas starting together never apply a migration twice. Then, in a
// transaction of its own, it moves the revocation log's sequence to the
// clock (openLogSeq, see logseq.go).
func (s *sqlStore) init(ctx context.Context) error {
	ms, err := migrations(s.d.name())
	if err != nil {
		return err
	}
	s.latestVersion = ms[len(ms)-1].version
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("begin migration", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.d.lockMigrations(ctx, tx); err != nil {
		return s.wrap("lock migrations", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return s.wrap("create schema_migrations", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return s.wrap("read schema version", err)
	}
	if current > s.latestVersion {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", current, s.latestVersion)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		for _, stmt := range splitStatements(m.sql) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return s.wrap("apply migration "+m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().UnixMilli()); err != nil {
			return s.wrap("record migration "+m.name, err)
		}
		s.log.Info("applied migration", "version", m.version, "name", m.name, "driver", s.d.name())
	}
	epoch, err := newEpoch()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('epoch', $1) ON CONFLICT (k) DO NOTHING`, epoch); err != nil {
		return s.wrap("create epoch", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'epoch'`).Scan(&s.epoch); err != nil {
		return s.wrap("read epoch", err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("commit migration", err)
	}
	return s.openLogSeq(ctx)
}

func newEpoch() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate epoch: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// splitStatements splits a migration file on semicolons that end a line.
// Migrations hold no procedural code, so this is enough.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			if stmt := strings.TrimSpace(cur.String()); stmt != ";" {
				out = append(out, stmt)
			}
			cur.Reset()
		}
	}
	if stmt := strings.TrimSpace(cur.String()); stmt != "" {
		out = append(out, stmt)
	}
	return out
}

// checkSchema reports whether all migrations are applied.
func (s *sqlStore) checkSchema(ctx context.Context) error {
	var current int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap("read schema version", err)
	}
	if current < s.latestVersion {
		return fmt.Errorf("%w: schema version %d, want %d", ErrUnavailable, current, s.latestVersion)
	}
	return nil
}
