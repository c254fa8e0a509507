package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Counter kinds (LoginCounter.Kind, AuditEvent.SubjectKind).
const (
	CounterIdentifier = "identifier"
	CounterIP         = "ip"
)

// Audit events written for login protection.
const (
	AuditLockoutLocked   = "lockout.locked"
	AuditLockoutUnlocked = "lockout.unlocked"
)

// LoginCounter is the failed-login counter of one scope. It is locked while
// LockedUntil is after now.
type LoginCounter struct {
	Scope       string // "ident:<normalised identifier>" or "ip:<address or /64>"
	Kind        string // CounterIdentifier or CounterIP
	Subject     string // the normalised identifier or the address
	Failures    int    // failures in the current window (or since the lock started)
	WindowStart time.Time
	LastFailure time.Time
	LockedUntil time.Time // zero when never locked in this window
	LockedAt    time.Time
	// JustLocked: the failure that returned this counter is the one that
	// locked it (exactly one failure per lock reports it, on any replica).
	JustLocked bool
	// Pending: attempts the check let through whose outcome is not known
	// yet (they expire PendingTTL after the last one); PendingAt the last.
	Pending   int
	PendingAt time.Time
	// CheckOK: the check that returned this counter admitted the attempt.
	CheckOK bool
}

// PendingTTL bounds how long an attempt let through the check counts
// while its outcome is unknown (an answer that is never reported).
const PendingTTL = 30 * time.Second

// LoginAttempt is one login let through the check under Scope, if the
// counter admits it: not locked, and its failures in the window plus the
// attempts still pending stay below Threshold (with Progressive, past the
// threshold one attempt at a time).
type LoginAttempt struct {
	Scope       string
	Kind        string
	Subject     string
	At          time.Time
	Threshold   int
	Window      time.Duration
	Progressive bool
}

// Locked reports whether the counter is locked at now.
func (c LoginCounter) Locked(now time.Time) bool { return c.LockedUntil.After(now) }

// LoginFailure is one failed login to count under Scope: the attempt's
// Threshold failures within Window lock the scope for LockFor (with
// Progressive, each failure from the threshold on locks for 1 s, 2 s,
// 4 s, … capped at LockFor).
type LoginFailure struct {
	LoginAttempt
	LockFor time.Duration
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	ID          int64
	At          time.Time
	Event       string // AuditLockoutLocked, AuditLockoutUnlocked, ...
	SubjectKind string
	Subject     string
	Actor       string          // "system" or the admin token's name
	Detail      json.RawMessage // event data (JSON object)
}

const counterCols = `scope, kind, subject, failures, window_start, last_failure, locked_until, locked_at, just_locked,
	pending, pending_at, check_ok`

func scanCounter(sc rowScanner) (LoginCounter, error) {
	var c LoginCounter
	var ws, lf, lu, la, pa int64
	if err := sc.Scan(&c.Scope, &c.Kind, &c.Subject, &c.Failures, &ws, &lf, &lu, &la, &c.JustLocked,
		&c.Pending, &pa, &c.CheckOK); err != nil {
		return LoginCounter{}, err
	}
	c.WindowStart, c.LastFailure, c.LockedUntil, c.LockedAt, c.PendingAt = fromMS(ws), fromMS(lf), fromMS(lu), fromMS(la), fromMS(pa)
	return c, nil
}

// pendingExpr is the pending count still in force ($cut: now-PendingTTL).
func pendingExpr(cut string) string {
	return `(CASE WHEN login_counters.pending_at > ` + cut + ` THEN login_counters.pending ELSE 0 END)`
}

// restartExpr: the window (or, with hard locks, an earlier lock) has ended,
// so the failures counted so far no longer count.
func restartExpr(progressive bool) string {
	if progressive {
		return `login_counters.window_start <= CAST($6 AS BIGINT)`
	}
	return `(login_counters.window_start <= CAST($6 AS BIGINT) OR login_counters.locked_until > 0)`
}

// beginAttemptSQL admits one attempt. Parameters: $1 scope, $2 kind, $3
// subject, $4 now, $5 threshold, $6 window cutoff, $7 pending cutoff
// (now-PendingTTL). A new row is an attempt with no failure: admitted.
func beginAttemptSQL(progressive bool) string {
	const now = `CAST($4 AS BIGINT)`
	pend := pendingExpr(`CAST($7 AS BIGINT)`)
	fails := `(CASE WHEN ` + restartExpr(progressive) + ` THEN 0 ELSE login_counters.failures END)`
	ok := `(login_counters.locked_until <= ` + now + ` AND ` + fails + ` + ` + pend + ` < CAST($5 AS BIGINT))`
	if progressive {
		ok = `(login_counters.locked_until <= ` + now + ` AND (` + fails + ` + ` + pend + ` < CAST($5 AS BIGINT) OR ` + pend + ` = 0))`
	}
	return `INSERT INTO login_counters (` + counterCols + `)
	VALUES ($1, $2, $3, 0, 0, 0, 0, 0, FALSE, 1, ` + now + `, TRUE)
	ON CONFLICT (scope) DO UPDATE SET
	pending = CASE WHEN ` + ok + ` THEN ` + pend + ` + 1 ELSE ` + pend + ` END,
	pending_at = CASE WHEN ` + ok + ` THEN ` + now + ` ELSE login_counters.pending_at END,
	check_ok = ` + ok + `
	RETURNING ` + counterCols
}

func (s *sqlStore) BeginLoginAttempts(ctx context.Context, as []LoginAttempt) (bool, []LoginCounter, error) {
	for _, a := range as {
		if a.Scope == "" || a.Threshold < 1 || a.Window <= 0 {
			return false, nil, fmt.Errorf("begin login attempt %q: scope, threshold and window are required", a.Scope)
		}
	}
	order := make([]int, len(as))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(x, y int) bool { return as[order[x]].Scope < as[order[y]].Scope })
	out := make([]LoginCounter, len(as))
	ok := true
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, nil, s.wrap("begin login attempt", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, i := range order {
		a := as[i]
		c, err := scanCounter(tx.QueryRowContext(ctx, beginAttemptSQL(a.Progressive), a.Scope, a.Kind, a.Subject, ms(a.At),
			a.Threshold, ms(a.At.Add(-a.Window)), ms(a.At.Add(-PendingTTL))))
		if err != nil {
			return false, nil, s.wrap("begin login attempt", err)
		}
		out[i] = c
		ok = ok && c.CheckOK
	}
	if !ok {
		return false, out, nil // rolled back: nothing recorded
	}
	if err := tx.Commit(); err != nil {
		return false, nil, s.wrap("begin login attempt: commit", err)
	}
	return true, out, nil
}

func (s *sqlStore) ReleaseLoginAttempt(ctx context.Context, scope string, now time.Time) error {
	return s.writeTx(ctx, "release login attempt", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE login_counters SET pending = `+pendingExpr(`$2`)+` - 1
			WHERE scope = $1 AND `+pendingExpr(`$2`)+` > 0`, scope, ms(now.Add(-PendingTTL)))
		return err
	})
}

// recordFailureSQL is the upsert. Parameters: $1 scope, $2 kind, $3
// subject, $4 now, $5 threshold, $6 window cutoff (now-window), $7 the end
// of a lock set by a first failure, $8 whether a first failure locks
// (threshold <= 1); each cast so that PostgreSQL deduces one type per
// parameter. In SET, column names read the row as it was before this
// statement; the row lock (PostgreSQL) or the single writer (SQLite) orders
// concurrent failures, so each sees the count the previous one left.
//
// Hard locks (progressive false): the threshold-th failure locks until
// now+lockFor; after the lock (or the window) ends the count restarts.
// Progressive delay: from the threshold-th failure in a window, each failure
// (not while locked) locks for 1 s, 2 s, 4 s, … (doubling with each failure
// past the threshold, capped at lockFor); the count restarts only when the
// window ends; only the first lock of a window reports JustLocked.
func recordFailureSQL(progressive bool, lockFor time.Duration) string {
	const (
		now    = `CAST($4 AS BIGINT)`
		f      = `login_counters.failures`
		locked = `login_counters.locked_until > ` + now
	)
	restart := restartExpr(progressive)
	until := `CAST($7 AS BIGINT)`
	if progressive {
		// now + min(lockFor, 2^(n-threshold) s), n being the new count (f+1).
		var b strings.Builder
		b.WriteString(now + ` + CASE ` + f + ` + 1 - CAST($5 AS BIGINT)`)
		capMS := lockFor.Milliseconds()
		for k, d := 0, int64(1000); d < capMS; k, d = k+1, d*2 {
			fmt.Fprintf(&b, ` WHEN %d THEN %d`, k, d)
		}
		fmt.Fprintf(&b, ` ELSE %d END`, capMS)
		until = b.String()
	}
	locks := f + ` + 1 >= CAST($5 AS BIGINT)`
	justLocked := locks
	if progressive {
		justLocked = f + ` + 1 = CAST($5 AS BIGINT)`
	}
	first := `CAST($8 AS BOOLEAN)`
	return `INSERT INTO login_counters (` + counterCols + `)
	VALUES ($1, $2, $3, 1, ` + now + `, ` + now + `, CASE WHEN ` + first + ` THEN CAST($7 AS BIGINT) ELSE 0 END,
		CASE WHEN ` + first + ` THEN ` + now + ` ELSE 0 END, ` + first + `, 0, 0, TRUE)
	ON CONFLICT (scope) DO UPDATE SET
	failures = CASE WHEN ` + locked + ` THEN ` + f + ` + 1 WHEN ` + restart + ` THEN 1 ELSE ` + f + ` + 1 END,
	window_start = CASE WHEN ` + locked + ` THEN login_counters.window_start WHEN ` + restart + ` THEN ` + now + `
		ELSE login_counters.window_start END,
	last_failure = ` + now + `,
	locked_until = CASE WHEN ` + locked + ` THEN login_counters.locked_until
		WHEN ` + restart + ` THEN CASE WHEN ` + first + ` THEN CAST($7 AS BIGINT) ELSE 0 END
		WHEN ` + locks + ` THEN ` + until + ` ELSE 0 END,
	locked_at = CASE WHEN ` + locked + ` THEN login_counters.locked_at
		WHEN ` + restart + ` THEN CASE WHEN ` + first + ` THEN ` + now + ` ELSE 0 END
		WHEN ` + locks + ` THEN ` + now + ` ELSE login_counters.locked_at END,
	just_locked = CASE WHEN ` + locked + ` THEN FALSE WHEN ` + restart + ` THEN ` + first + `
		ELSE ` + justLocked + ` END,
	pending = CASE WHEN ` + pendingExpr(`CAST($9 AS BIGINT)`) + ` > 0 THEN ` + pendingExpr(`CAST($9 AS BIGINT)`) + ` - 1 ELSE 0 END
	RETURNING ` + counterCols
}

func (s *sqlStore) RecordLoginFailure(ctx context.Context, f LoginFailure, onLock func(LoginCounter) ([]AuditEvent, []Alert)) (LoginCounter, error) {
	cs, err := s.RecordLoginFailures(ctx, []LoginFailure{f}, "", onLock)
	if err != nil {
		return LoginCounter{}, err
	}
	return cs[0], nil
}

func (s *sqlStore) RecordLoginFailures(ctx context.Context, fs []LoginFailure, eventScope string, onLock func(LoginCounter) ([]AuditEvent, []Alert)) ([]LoginCounter, error) {
	for _, f := range fs {
		if f.Scope == "" || f.Threshold < 1 || f.Window <= 0 || f.LockFor <= 0 {
			return nil, fmt.Errorf("record login failure %q: scope, threshold, window and lock duration are required", f.Scope)
		}
	}
	// Rows are locked in scope order in every transaction: no two can wait
	// on each other (PostgreSQL).
	order := make([]int, len(fs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return fs[order[a]].Scope < fs[order[b]].Scope })
	out := make([]LoginCounter, len(fs))
	err := s.writeTx(ctx, "record login failure", func(tx *sql.Tx) error {
		for _, i := range order {
			f := fs[i]
			firstLock := f.LockFor
			if f.Progressive && firstLock > time.Second {
				firstLock = time.Second
			}
			c, err := scanCounter(tx.QueryRowContext(ctx, recordFailureSQL(f.Progressive, f.LockFor), f.Scope, f.Kind, f.Subject, ms(f.At),
				f.Threshold, ms(f.At.Add(-f.Window)), ms(f.At.Add(firstLock)), f.Threshold <= 1, ms(f.At.Add(-PendingTTL))))
			if err != nil {
				return err
			}
			out[i] = c
			if !c.JustLocked || onLock == nil {
				continue
			}
			audit, alerts := onLock(c)
			if err := insertAudit(ctx, tx, audit); err != nil {
				return err
			}
			if err := insertAlerts(ctx, tx, alerts, f.At); err != nil {
				return err
			}
		}
		if eventScope != "" && len(fs) > 0 {
			// The failure as an event for the dashboard's overview (failed_logins,
			// kept a day per scope) and as a refused login for its analytics
			// (login_refusals, kept until the retention).
			at := fs[0].At
			if _, err := tx.ExecContext(ctx, `DELETE FROM failed_logins WHERE scope = $1 AND at < $2`, eventScope, ms(at.Add(-24*time.Hour))); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO failed_logins (scope, at) VALUES ($1, $2)`, eventScope, ms(at)); err != nil {
				return err
			}
			if err := insertRefusal(ctx, tx, RefusalCredentials, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *sqlStore) ResetLoginFailures(ctx context.Context, scope string, now time.Time) error {
	return s.writeTx(ctx, "reset login failures", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM login_counters WHERE scope = $1 AND locked_until <= $2`, scope, ms(now))
		return err
	})
}

func (s *sqlStore) ActiveLockouts(ctx context.Context, scopes []string, now time.Time) ([]LoginCounter, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(scopes)+1)
	args = append(args, ms(now))
	for _, sc := range scopes {
		args = append(args, sc)
	}
	return readAll(ctx, s, "active lockouts", scanCounter, `SELECT `+counterCols+` FROM login_counters WHERE locked_until > $1 AND scope IN (`+
		s.placeholders(2, len(scopes))+`) ORDER BY scope`, args...)
}

func (s *sqlStore) ListLockouts(ctx context.Context, now time.Time, limit int) ([]LoginCounter, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return readAll(ctx, s, "list lockouts", scanCounter, `SELECT `+counterCols+` FROM login_counters WHERE locked_until > $1
		ORDER BY locked_at DESC, scope LIMIT $2`, ms(now), limit)
}

func (s *sqlStore) Unlock(ctx context.Context, scope string, now time.Time, audit []AuditEvent, alerts []Alert) (LoginCounter, error) {
	var c LoginCounter
	err := s.writeTx(ctx, "unlock", func(tx *sql.Tx) error {
		var err error
		c, err = scanCounter(tx.QueryRowContext(ctx, `DELETE FROM login_counters WHERE scope = $1 AND locked_until > $2
			RETURNING `+counterCols, scope, ms(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		return insertAlerts(ctx, tx, alerts, now)
	})
	return c, err
}

func (s *sqlStore) PruneLoginCounters(ctx context.Context, before, now time.Time) (int, error) {
	var n int64
	err := s.writeTx(ctx, "prune login counters", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM login_counters WHERE last_failure < $1 AND pending_at < $1 AND locked_until <= $2`, ms(before), ms(now))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

func insertAudit(ctx context.Context, tx *sql.Tx, events []AuditEvent) error {
	for _, e := range events {
		detail := string(e.Detail)
		if detail == "" {
			detail = "{}"
		}
		if !json.Valid([]byte(detail)) {
			return fmt.Errorf("audit event %s: detail is not JSON", e.Event)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (at, event, subject_kind, subject, actor, detail)
			VALUES ($1, $2, $3, $4, $5, $6)`, ms(e.At), e.Event, e.SubjectKind, e.Subject, e.Actor, detail); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) AppendAudit(ctx context.Context, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.writeTx(ctx, "append audit", func(tx *sql.Tx) error { return insertAudit(ctx, tx, events) })
}

func (s *sqlStore) ListAudit(ctx context.Context, beforeID int64, limit int) ([]AuditEvent, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := s.read(ctx, `SELECT id, at, event, subject_kind, subject, actor, detail FROM audit_events
		WHERE id < $1 ORDER BY id DESC LIMIT $2`, beforeID, limit)
	if err != nil {
		return nil, s.wrap("list audit", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.Event, &e.SubjectKind, &e.Subject, &e.Actor, &detail); err != nil {
			return nil, s.wrap("list audit", err)
		}
		e.At, e.Detail = fromMS(at), json.RawMessage(detail)
		out = append(out, e)
	}
	return out, s.wrap("list audit", rows.Err())
}
