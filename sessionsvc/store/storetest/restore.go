package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// RestoreFromBackup is the contract of a restore: the database goes back
// to a backup (keeping its epoch, and on PostgreSQL the sequence value the
// backup holds), sessionsvc reopens it and appends before a proxy that had
// followed the lost timeline past the backup syncs again. That proxy must
// receive every entry appended after the restore: a delta from its old
// cursor that skipped the new entries numbered at or below it would leave
// them unenforced forever. Its cursor names an entry this timeline never
// had, so the answer is a snapshot.
func RestoreFromBackup(t *testing.T, b Backend) {
	lt := newLostTimeline(t, b)
	require.NoError(t, lt.st.Close())

	lt.backup.restore(t)
	st := openRaw(t, lt.u)
	defer st.Close()
	e2, err := st.Epoch(ctx())
	require.NoError(t, err)
	require.Equal(t, lt.epoch, e2, "a restore keeps the epoch")
	// The first lifecycle pass and admin terminations append before the
	// proxy syncs, more entries than the lost timeline had.
	newKeys := revoke(t, st, "fp:new", 60, lt.now)

	got := follow(t, st, lt.epoch, lt.cursor, lt.now)
	assert.True(t, got.reset, "a cursor of the lost timeline gets a snapshot")
	for _, k := range newKeys {
		assert.Contains(t, got.keys, k, "entry appended after the restore reaches the proxy")
	}
	// And the proxy goes on from there with deltas.
	more := revoke(t, st, "fp:after", 3, lt.now)
	next := follow(t, st, lt.epoch, got.cursor, lt.now)
	assert.False(t, next.reset)
	assert.Equal(t, more, next.list)
}

// RestoreUnderRunningStore: the database goes back (a backup restored into
// it, or its log's tail lost) while sessionsvc keeps running, so nothing
// reopens the store before it appends again. A proxy following the lost
// timeline must still receive every entry appended after the restore.
func RestoreUnderRunningStore(t *testing.T, b Backend) {
	lt := newLostTimeline(t, b)
	defer lt.st.Close()

	lt.backup.rewindLog(t)
	newKeys := revoke(t, lt.st, "fp:new", 60, lt.now)
	got := follow(t, lt.st, lt.epoch, lt.cursor, lt.now)
	for _, k := range newKeys {
		assert.Contains(t, got.keys, k, "entry appended after the restore reaches the proxy")
	}
}

// lostTimeline is where both restores start: a store on a fresh database
// that held 10 entries when a backup was taken, then 40 more (the timeline
// the restore loses) that a proxy followed up to cursor.
type lostTimeline struct {
	u      string
	st     store.Store // open; the caller closes it
	now    time.Time
	epoch  string
	backup *backup
	cursor int64 // the proxy's, past the backup's head
}

func newLostTimeline(t *testing.T, b Backend) lostTimeline {
	t.Helper()
	lt := lostTimeline{u: b.URL(t), now: time.Now()}
	lt.st = openRaw(t, lt.u)
	var err error
	lt.epoch, err = lt.st.Epoch(ctx())
	require.NoError(t, err)
	revoke(t, lt.st, "fp:backup", 10, lt.now)
	lt.backup = takeBackup(t, b.Name, lt.u)
	revoke(t, lt.st, "fp:lost", 40, lt.now)
	lt.cursor = follow(t, lt.st, lt.epoch, 0, lt.now).cursor
	return lt
}

func openRaw(t *testing.T, u string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), u, nil)
	require.NoError(t, err)
	return st
}

// revoke revokes n keys prefix-0 … prefix-(n-1), ten per call, and returns them.
func revoke(t *testing.T, st store.Store, prefix string, n int, now time.Time) []string {
	t.Helper()
	var keys []string
	for i := 0; i < n; i += 10 {
		var batch []string
		for j := i; j < min(n, i+10); j++ {
			batch = append(batch, fmt.Sprintf("%s-%02d", prefix, j))
		}
		require.NoError(t, st.RevokeKeys(ctx(), batch, protocol.ReasonManual, now.Add(time.Hour), now))
		keys = append(keys, batch...)
	}
	return keys
}

type synced struct {
	cursor int64
	reset  bool
	keys   map[string]bool
	list   []string
}

// follow syncs as a proxy does, from cursor to the end of the feed.
func follow(t *testing.T, st store.Store, epoch string, cursor int64, now time.Time) synced {
	t.Helper()
	out := synced{keys: map[string]bool{}}
	for {
		p, err := st.Changes(ctx(), epoch, cursor, 25, now)
		require.NoError(t, err)
		out.reset = out.reset || p.Reset
		for _, c := range p.Changes {
			out.keys[c.Key] = true
			out.list = append(out.list, c.Key)
		}
		cursor = p.Cursor
		if !p.More {
			out.cursor = cursor
			return out
		}
	}
}

// backup is a database as it was when taken.
type backup struct {
	backend, url string
	file         string      // SQLite: a copy of the database
	head         int64       // PostgreSQL: the log's head
	meta         [][2]string // PostgreSQL: the meta table
}

func takeBackup(t *testing.T, backend, u string) *backup {
	t.Helper()
	bk := &backup{backend: backend, url: u}
	db := rawDB(t, backend, u)
	defer db.Close()
	if backend == "sqlite" {
		bk.file = filepath.Join(t.TempDir(), "backup.db")
		_, err := db.ExecContext(ctx(), `VACUUM INTO '`+bk.file+`'`)
		require.NoError(t, err)
	}
	require.NoError(t, db.QueryRowContext(ctx(), `SELECT COALESCE(MAX(seq), 0) FROM revocation_log`).Scan(&bk.head))
	rows, err := db.QueryContext(ctx(), `SELECT k, v FROM meta`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var kv [2]string
		require.NoError(t, rows.Scan(&kv[0], &kv[1]))
		bk.meta = append(bk.meta, kv)
	}
	require.NoError(t, rows.Err())
	return bk
}

// restore puts the database back as it was (the store is closed). On
// PostgreSQL the log's tail is dropped and its sequence set back, as
// restoring a dump of the backup would leave them.
func (bk *backup) restore(t *testing.T) {
	t.Helper()
	if bk.backend == "sqlite" {
		path := sqlitePath(bk.url)
		data, err := os.ReadFile(bk.file)
		require.NoError(t, err)
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
				require.NoError(t, err)
			}
		}
		require.NoError(t, os.WriteFile(path, data, 0o600))
		return
	}
	bk.rewindLog(t)
	db := rawDB(t, bk.backend, bk.url)
	defer db.Close()
	_, err := db.ExecContext(ctx(), `DELETE FROM meta`)
	require.NoError(t, err)
	for _, kv := range bk.meta {
		_, err := db.ExecContext(ctx(), `INSERT INTO meta (k, v) VALUES ($1, $2)`, kv[0], kv[1])
		require.NoError(t, err)
	}
}

// rewindLog drops the log's entries past the backup's head and sets its
// sequence back to that head (the store may be open).
func (bk *backup) rewindLog(t *testing.T) {
	t.Helper()
	db := rawDB(t, bk.backend, bk.url)
	defer db.Close()
	_, err := db.ExecContext(ctx(), `DELETE FROM revocation_log WHERE seq > $1`, bk.head)
	require.NoError(t, err)
	if bk.backend == "sqlite" {
		_, err = db.ExecContext(ctx(), `UPDATE sqlite_sequence SET seq = $1 WHERE name = 'revocation_log'`, bk.head)
	} else {
		_, err = db.ExecContext(ctx(), `SELECT setval(pg_get_serial_sequence('revocation_log', 'seq'), $1)`, bk.head)
	}
	require.NoError(t, err)
}

func sqlitePath(u string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
	path, _, _ := strings.Cut(rest, "?")
	return path
}

// rawDB connects to the database at u past the store.
func rawDB(t *testing.T, backend, u string) *sql.DB {
	t.Helper()
	if backend == "sqlite" {
		db, err := sql.Open("sqlite", "file:"+sqlitePath(u)+"?_pragma=busy_timeout(10000)")
		require.NoError(t, err)
		db.SetMaxOpenConns(1)
		return db
	}
	cfg, err := pgx.ParseConfig(u)
	require.NoError(t, err)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	return db
}
