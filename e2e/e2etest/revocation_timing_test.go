package e2etest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// Issue 12, "timing and faults": when a revocation takes effect, and that
// it survives sessionsvc's store being reset or restored. Each runs on
// SQLite and on PostgreSQL.

// refusedNow asserts that every worker refuses token at once (no waiting).
func (s *system) refusedNow(tb testing.TB, d *device, token, reason, what string) {
	tb.Helper()
	for w := 0; w < workers; w++ {
		r := s.get(tb, d, token, "/api/articles", w)
		require.True(tb, r.status == 401 && r.reason() == reason, "%s: worker %d answered %s", what, w, r)
	}
}

// stillRefused asserts that every worker keeps refusing token for a while
// (several sync intervals: the sync loop had every chance to forget it).
func (s *system) stillRefused(tb testing.TB, d *device, token, reason string, d0 time.Duration) {
	tb.Helper()
	for end := time.Now().Add(d0); time.Now().Before(end); {
		s.refusedNow(tb, d, token, reason, "kept")
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLogoutIsImmediateAtTheProxy: once the client has the answer of a
// logout through the proxy (the app's, or the user API's), no worker of
// the proxy accepts the token.
func TestLogoutIsImmediateAtTheProxy(t *testing.T) {
	onEachBackend(t, func(t *testing.T, sys *system, _ backend) {
		laptop := newDevice(t, "127.0.0.2", uaLaptop)
		phone := newDevice(t, "127.0.0.3", uaPhone)
		for i := 0; i < 3; i++ {
			tok := sys.login(t, laptop, "alice")
			sys.currentSession(t, laptop, tok.jwt)
			sys.everyWorker(t, laptop, tok.jwt, "/api/articles", "admitted", status(200))
			r := laptop.do(t, req{method: "POST", url: sys.proxyURL + "/api/auth/logout", token: tok.jwt, worker: i % workers})
			require.Equal(t, 200, r.status, r.String())
			sys.refusedNow(t, laptop, tok.jwt, "logout", fmt.Sprintf("app logout %d", i))
		}
		const u = "/api/magic-sessionmanager"
		for i, route := range []struct{ method, path string }{
			{"POST", u + "/logout"}, {"POST", u + "/logout-all"}, {"POST", u + "/logout-others"}, {"DELETE", u + "/my-sessions/"},
		} {
			own := sys.login(t, laptop, "bob")
			other := sys.login(t, phone, "bob")
			sys.currentSession(t, laptop, own.jwt)
			otherID := sys.currentSession(t, phone, other.jwt)
			sys.everyWorker(t, phone, other.jwt, "/api/articles", "admitted", status(200))
			path, victim, vd := route.path, other.jwt, phone
			switch {
			case strings.HasSuffix(path, "/"):
				path += otherID
			case strings.HasSuffix(path, "/logout"):
				victim, vd = own.jwt, laptop
			}
			r := laptop.do(t, req{method: route.method, url: sys.proxyURL + path, token: own.jwt, worker: i % workers})
			require.Equal(t, 200, r.status, "%s %s: %s", route.method, path, r)
			for w := 0; w < workers; w++ {
				r := sys.get(t, vd, victim, "/api/articles", w)
				require.Equal(t, 401, r.status, "%s %s: worker %d answered %s", route.method, path, w, r)
			}
		}
	})
}

// TestStoreResetKeepsRevocations: sessionsvc restarted on an empty
// database (a new epoch). Every proxy keeps refusing the tokens it saw
// revoked until they expire, logs and counts it; new revocations in the
// new store work as usual.
func TestStoreResetKeepsRevocations(t *testing.T) {
	onEachBackend(t, func(t *testing.T, sys *system, b backend) {
		d := newDevice(t, "127.0.0.2", uaLaptop)
		tok := sys.login(t, d, "alice")
		sid := sys.currentSession(t, d, tok.jwt)
		r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, d, tok.jwt, "/api/articles", "terminated", refused(401, "manual"))

		sys.stopSessionsvc()
		sys.dbURL = b.url(t) // an empty database: a new epoch
		sys.startSessionsvc()
		sys.eventually(t, "the proxy took the new epoch's snapshot", func() (bool, string) {
			n := sys.counter("meshsession_revocations_kept")
			return n >= 1, fmt.Sprintf("revocations_kept=%d", n)
		})
		require.Contains(t, sys.logs.tail(400), "lacks")
		sys.stillRefused(t, d, tok.jwt, "manual", 2*time.Second)

		// The new store works: a new session, revoked, is refused too.
		tok2 := sys.login(t, d, "bob")
		sid2 := sys.currentSession(t, d, tok2.jwt)
		sys.everyWorker(t, d, tok2.jwt, "/api/articles", "admitted", status(200))
		r = sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid2+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, d, tok2.jwt, "/api/articles", "terminated after the reset", refused(401, "manual"))
	})
}

// TestRestoreKeepsRevocations: sessionsvc's database restored from a
// backup taken before a revocation. The proxies keep refusing the token
// (the backup does not know the revocation), and revocations made after
// the restore still reach them (their cursor was past the restored log).
func TestRestoreKeepsRevocations(t *testing.T) {
	onEachBackend(t, func(t *testing.T, sys *system, _ backend) {
		d := newDevice(t, "127.0.0.2", uaLaptop)
		early := sys.login(t, d, "alice")
		sys.currentSession(t, d, early.jwt)

		sys.stopSessionsvc()
		restore := backup(t, sys.dbURL)
		sys.startSessionsvc()

		// After the backup: a session ends (and a few more changes, so
		// that the log the proxy saw runs well past the backup's).
		tok := sys.login(t, d, "carol")
		sid := sys.currentSession(t, d, tok.jwt)
		for i := 0; i < 3; i++ {
			x := sys.login(t, d, "bob")
			xid := sys.currentSession(t, d, x.jwt)
			require.Equal(t, 200, sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+xid+"/terminate").status)
		}
		r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, d, tok.jwt, "/api/articles", "terminated", refused(401, "manual"))

		sys.stopSessionsvc()
		restore()
		sys.startSessionsvc()
		sys.eventually(t, "the proxy took the restored store's snapshot", func() (bool, string) {
			n := sys.counter("meshsession_revocations_kept")
			return n >= 1, fmt.Sprintf("revocations_kept=%d", n)
		})
		sys.stillRefused(t, d, tok.jwt, "manual", 2*time.Second)

		// A revocation in the restored store reaches the proxy.
		sid0 := sys.currentSession(t, d, early.jwt)
		r = sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid0+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, d, early.jwt, "/api/articles", "terminated after the restore", refused(401, "manual"))
	})
}

// backup copies sessionsvc's database (sessionsvc stopped) and returns
// the function that restores it (sessionsvc stopped): the SQLite file, or
// every table and sequence of the PostgreSQL schema.
func backup(t *testing.T, dbURL string) (restore func()) {
	t.Helper()
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		dir := t.TempDir()
		copyFiles(t, filepath.Dir(path), dir, filepath.Base(path))
		return func() { copyFiles(t, dir, filepath.Dir(path), filepath.Base(path)) }
	}
	cfg, err := pgx.ParseConfig(dbURL)
	require.NoError(t, err)
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	var schema string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema))
	tables := column(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	seqs := column(t, db, `SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = current_schema()`)
	bk := schema + "_bk"
	_, err = db.ExecContext(ctx, `CREATE SCHEMA `+bk)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), `DROP SCHEMA `+bk+` CASCADE`) })
	for _, tb := range tables {
		_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s.%s AS TABLE %s.%s`, bk, tb, schema, tb))
		require.NoError(t, err, tb)
	}
	type seqVal struct {
		last   int64
		called bool
	}
	vals := map[string]seqVal{}
	for _, s := range seqs {
		var v seqVal
		require.NoError(t, db.QueryRowContext(ctx, fmt.Sprintf(`SELECT last_value, is_called FROM %s.%s`, schema, s)).Scan(&v.last, &v.called))
		vals[s] = v
	}
	return func() {
		qualified := make([]string, len(tables))
		for i, tb := range tables {
			qualified[i] = schema + "." + tb
		}
		// As a data-only restore does (pg_restore --disable-triggers):
		// the tables are copied as they were, triggers that maintain
		// derived tables (counts, search text) do not fire.
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		_, err = tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, `TRUNCATE `+strings.Join(qualified, ", ")+` CASCADE`)
		require.NoError(t, err)
		for _, tb := range tables {
			// OVERRIDING SYSTEM VALUE: identity columns (session_seen.seq)
			// get their saved values, as COPY gives them in a restore.
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s.%s OVERRIDING SYSTEM VALUE SELECT * FROM %s.%s`, schema, tb, bk, tb))
			require.NoError(t, err, tb)
		}
		require.NoError(t, tx.Commit())
		for s, v := range vals {
			_, err := db.ExecContext(ctx, `SELECT setval($1, $2, $3)`, schema+"."+s, v.last, v.called)
			require.NoError(t, err, s)
		}
	}
}

func column(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// copyFiles copies name and its -wal/-shm companions from one folder to
// another (a missing companion is removed at the destination).
func copyFiles(t *testing.T, from, to, name string) {
	t.Helper()
	for _, n := range []string{name, name + "-wal", name + "-shm"} {
		src, err := os.Open(filepath.Join(from, n))
		if os.IsNotExist(err) {
			_ = os.Remove(filepath.Join(to, n))
			continue
		}
		require.NoError(t, err)
		dst, err := os.Create(filepath.Join(to, n))
		require.NoError(t, err)
		_, err = io.Copy(dst, src)
		require.NoError(t, err)
		require.NoError(t, dst.Close())
		require.NoError(t, src.Close())
	}
}

// startAnotherProxy starts a second dev proxy on the same sessionsvc and
// app (see startProxy) and returns its URL.
func (s *system) startAnotherProxy(tb testing.TB) string {
	tb.Helper()
	return "http://" + s.startProxy(tb, "devproxy-2").Addr().String()
}

// TestNoRevokedTokenPassesAfterAProxyStart: a proxy started after a
// revocation refuses the token from its very first request on every
// worker (the start-up hold waits for the first sync).
func TestNoRevokedTokenPassesAfterAProxyStart(t *testing.T) {
	sys := startE2E(t, storetest.SQLiteURL)
	d := newDevice(t, "127.0.0.2", uaLaptop)
	tok := sys.login(t, d, "alice")
	sid := sys.currentSession(t, d, tok.jwt)
	r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid+"/terminate")
	require.Equal(t, 200, r.status, r.String())
	for trial := 0; trial < 3; trial++ {
		url := sys.startAnotherProxy(t)
		for w := 0; w < workers; w++ {
			r := d.do(t, req{url: url + "/api/articles", token: tok.jwt, worker: w})
			require.True(t, r.status == 401 && r.reason() == "manual", "proxy %d, worker %d, first request: %s", trial, w, r)
		}
	}
}

// TestRevocationIsPushed: with the poll all but off (sync_interval 1m,
// beyond every wait of these tests), a revocation still reaches every
// worker, from the proxy's start on: the syncing worker's long-poll
// (sync_wait) is answered by the append, in process on SQLite and by
// LISTEN/NOTIFY on PostgreSQL, and the other workers adopt what it
// published on their next request.
func TestRevocationIsPushed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			pluginWasm(t)
			sys := startSystem(t, b.url(t), map[string]any{"sync_interval": "1m"})
			d := newDevice(t, "127.0.0.2", uaLaptop)
			for i := 0; i < 3; i++ {
				tok := sys.login(t, d, "alice")
				sid := sys.currentSession(t, d, tok.jwt)
				sys.everyWorker(t, d, tok.jwt, "/api/articles", "admitted", status(200))
				r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid+"/terminate")
				require.Equal(t, 200, r.status, r.String())
				sys.everyWorker(t, d, tok.jwt, "/api/articles", fmt.Sprintf("terminated %d", i), refused(401, "manual"))
			}
		})
	}
}
