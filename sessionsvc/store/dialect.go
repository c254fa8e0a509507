package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite "modernc.org/sqlite"
)

// dialect holds what differs between SQLite and PostgreSQL; the SQL itself
// is shared ($N placeholders work in both).
type dialect interface {
	name() string
	// lockLog serialises appends to the revocation log (see logTx).
	lockLog(ctx context.Context, tx *sql.Tx) error
	// lockUser serialises a user's block with the creation of their
	// sessions (CreateSession, SetBlocked).
	lockUser(ctx context.Context, tx *sql.Tx, userID string) error
	// lockMigrations serialises schema migrations across replicas.
	lockMigrations(ctx context.Context, tx *sql.Tx) error
	// bindvar is the placeholder of the i-th (1-based) argument in long
	// generated lists: SQLite's "?" avoids the quadratic cost of resolving
	// many numbered parameters; PostgreSQL needs "$i".
	bindvar(i int) string
	// like is the case-insensitive LIKE operator.
	like() string
	// skipLocked is appended to the SELECT that picks alerts to lease.
	skipLocked() string
	isConflict(err error) bool
	isUnavailable(err error) bool
}

// Advisory lock ids (arbitrary constants, "ms" + purpose), the second key
// of a (schema, id) advisory lock.
const (
	lockIDLog       int64 = 0x6d73_0001
	lockIDMigration int64 = 0x6d73_0002
)

type sqliteDialect struct{}

func (sqliteDialect) name() string { return "sqlite" }

// SQLite has a single writer (BEGIN IMMEDIATE plus one writer connection),
// so log appends are already serialised.
func (sqliteDialect) lockLog(context.Context, *sql.Tx) error          { return nil }
func (sqliteDialect) lockMigrations(context.Context, *sql.Tx) error   { return nil }
func (sqliteDialect) lockUser(context.Context, *sql.Tx, string) error { return nil }
func (sqliteDialect) like() string                                    { return "LIKE" }
func (sqliteDialect) bindvar(int) string                              { return "?" }
func (sqliteDialect) skipLocked() string                              { return "" }

func (sqliteDialect) isConflict(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return se.Code() == 2067 || se.Code() == 1555
	}
	return false
}

func (sqliteDialect) isUnavailable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6, 10, 13, 14, 26: // BUSY, LOCKED, IOERR, FULL, CANTOPEN, NOTADB
			return true
		}
	}
	return commonUnavailable(err)
}

type postgresDialect struct{}

func (postgresDialect) name() string { return "postgres" }

// Advisory locks are database-wide; keying them by schema lets several
// deployments (or test runs) share a database without waiting on each other.
// Every transaction that may append to the log takes this lock, so it also
// queues a NOTIFY on the schema's channel: PostgreSQL delivers it to every
// replica's listener at commit (never on rollback), which wakes their
// long-poll waiters (see feedSignal).
func (postgresDialect) lockLog(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, postgresLockLogSQL, int32(lockIDLog))
	return err
}

// postgresLockLogSQL takes the log lock and queues the NOTIFY ($1: lockIDLog).
const postgresLockLogSQL = `SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1), pg_notify(` + notifyChannelSQL + `, '')`

// lockUser takes a transaction lock on one user, in the one-key advisory
// lock space (apart from the two-key locks above), keyed by schema and user.
func (postgresDialect) lockUser(ctx context.Context, tx *sql.Tx, userID string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/user/' || $1, 0))`, userID)
	return err
}

func (postgresDialect) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1)`, int32(lockIDMigration))
	return err
}

func (postgresDialect) like() string         { return "ILIKE" }
func (postgresDialect) bindvar(i int) string { return "$" + strconv.Itoa(i) }
func (postgresDialect) skipLocked() string   { return " FOR UPDATE SKIP LOCKED" }

func (postgresDialect) isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (postgresDialect) isUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources
			strings.HasPrefix(pe.Code, "57"),       // operator intervention (shutdown, cancel)
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock: retry later
			pe.Code == "3D000", pe.Code == "3F000": // database / schema missing
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	return commonUnavailable(err)
}

func commonUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return strings.Contains(err.Error(), "database is closed")
}
