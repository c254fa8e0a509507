package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"sort"
	"strings"
)

// RecordActivity writes each mark's session's latest mark into the narrow
// session_seen table (migration 0080); it never touches the sessions row.
// MergeActivity later moves the marks into sessions.last_active. Reads of
// a session's lastActive (GetSession, FindSessionByKeys, ListSessions'
// rows) and the idle reaper see a mark as soon as it is committed here.
func (s *sqlStore) RecordActivity(ctx context.Context, marks []ActivityMark) (int, error) {
	if len(marks) == 0 {
		return 0, nil
	}
	// Coalesce per key: only the latest mark matters.
	latest := make(map[string]int64, len(marks))
	order := make([]string, 0, len(marks))
	for _, m := range marks {
		if m.Key == "" || m.At.IsZero() {
			continue
		}
		v := ms(m.At)
		if old, ok := latest[m.Key]; !ok {
			order = append(order, m.Key)
			latest[m.Key] = v
		} else if v > old {
			latest[m.Key] = v
		}
	}
	// A fixed order walks SQLite's key index in order.
	sort.Strings(order)
	s.flushing.Add(1)
	defer s.flushing.Add(-1)
	// Short transactions at bulk priority: a revocation waits for one
	// statement at most, never for the whole batch (a flush of 100k marks
	// is many transactions). On SQLite a transaction also ends early, after
	// any statement, when a more urgent writer is waiting at the gate.
	updated := 0
	for i := 0; i < len(order); {
		var n, done int
		err := s.writeTxPrio(ctx, prioBulk, "record activity", func(tx *sql.Tx) error {
			var err error
			if s.d.name() == "postgres" {
				part := order[i:min(i+activityChunk, len(order))]
				done = len(part)
				n, err = activityPostgres(ctx, tx, part, atsOf(latest, part))
			} else {
				n, done, err = s.activitySQLite(ctx, tx, order[i:], latest)
			}
			return err
		})
		if err != nil {
			return updated, err
		}
		updated += n
		i += done
	}
	return updated, nil
}

func atsOf(latest map[string]int64, keys []string) []int64 {
	ats := make([]int64, len(keys))
	for j, k := range keys {
		ats[j] = latest[k]
	}
	return ats
}

const (
	// activityChunk bounds one activity transaction (keys).
	activityChunk = 1000
	// activityStmtRows is the rows of one SQLite activity statement: a
	// revocation waiting at the gate waits for at most one of these.
	activityStmtRows = 100
)

// activitySQLite upserts session_seen in statements of activityStmtRows
// keys, up to activityChunk keys, and stops early when a more urgent
// writer waits. Each statement joins a VALUES list to the key index
// (several keys of one session collapse to their latest mark). It returns
// the sessions whose mark moved forward and the keys done.
func (s *sqlStore) activitySQLite(ctx context.Context, tx *sql.Tx, keys []string, latest map[string]int64) (updated, done int, err error) {
	stmtFor := func(n int) string {
		// "WHERE true": SQLite's parser needs it between a join and an upsert.
		return `INSERT INTO session_seen (session_id, at)
			SELECT k.session_id, max(m.column2)
			FROM (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + `) AS m
			JOIN session_keys k ON k.key = m.column1 WHERE true GROUP BY k.session_id
			ON CONFLICT (session_id) DO UPDATE SET at = excluded.at WHERE excluded.at > session_seen.at`
	}
	var full *sql.Stmt
	defer func() {
		if full != nil {
			_ = full.Close()
		}
	}()
	args := make([]any, 0, 2*activityStmtRows)
	for done < len(keys) && done < activityChunk {
		part := keys[done:min(done+activityStmtRows, len(keys))]
		args = args[:0]
		for _, k := range part {
			args = append(args, k, latest[k])
		}
		var res sql.Result
		if len(part) == activityStmtRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, stmtFor(activityStmtRows)); err != nil {
					return updated, done, err
				}
			}
			res, err = full.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, stmtFor(len(part)), args...)
		}
		if err != nil {
			return updated, done, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return updated, done, err
		}
		updated += int(n)
		done += len(part)
		if s.gate != nil && s.gate.waiting(prioNormal) > 0 {
			break
		}
	}
	return updated, done, nil
}

// activityPostgres upserts a chunk into session_seen with one statement
// over two arrays (one round trip, one plan whatever the chunk size), in
// session order (two replicas' flushes lock rows in the same order).
// Several keys of one session collapse to their latest mark first.
// lock_timeout keeps a flush from waiting long behind the merger: it gives
// up (the marks are retried) instead. Its commit does not wait for the WAL
// flush (synchronous_commit off): a crash may lose the last marks, which
// the design allows, and revocations do not queue behind its fsyncs.
func activityPostgres(ctx context.Context, tx *sql.Tx, keys []string, ats []int64) (int, error) {
	// A chunk touches a few thousand index entries of a table of millions:
	// the planner's costs still favour hashing whole tables, so for this
	// transaction only it is told to use the indexes.
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', '200ms', true),
		set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
		set_config('enable_seqscan', 'off', true), set_config('synchronous_commit', 'off', true)`); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO session_seen (session_id, at)
		SELECT k.session_id, max(m.at)
		FROM unnest($1::text[], $2::bigint[]) AS m(key, at)
		JOIN session_keys k ON k.key = m.key
		GROUP BY k.session_id ORDER BY k.session_id
		ON CONFLICT (session_id) DO UPDATE SET at = excluded.at WHERE excluded.at > session_seen.at`, keys, ats)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

const (
	// mergeChunk bounds one merge transaction (marks).
	mergeChunk = 500
	// mergeStmtRows is the rows of one SQLite merge statement (each a
	// random, wide sessions row): any other writer waiting at the gate
	// waits for at most one of these.
	mergeStmtRows = 25
)

// MergeActivity moves up to max pending marks of session_seen into
// sessions.last_active (never backwards, active sessions only) and
// deletes them, oldest first (in the order their sessions' marks were first
// written), in transactions of mergeChunk marks. It returns the marks
// taken (0 when none is pending, or, on PostgreSQL, while another
// replica's merger runs); fewer than max when none is left or activity
// is being flushed.
//
// The merge is the one write per mark to the wide sessions row (a random
// page and its last_active index entries): it runs below every other
// writer. On SQLite it takes the write connection at the lowest priority
// and gives it up after any statement when another writer waits, activity
// flushes included, so activity keeps its rate and the merger uses the
// gaps. On PostgreSQL one merger runs at a time (a transaction-level
// advisory lock per schema), and a round ends after its transaction when
// this store is flushing activity (the database's CPU goes to activity
// first; the merger's next round is the caller's next interval).
func (s *sqlStore) MergeActivity(ctx context.Context, max int) (int, error) {
	taken := 0
	for taken < max {
		var n int
		err := s.writeTxPrio(ctx, prioMerge, "merge activity", func(tx *sql.Tx) error {
			var err error
			if s.d.name() == "postgres" {
				n, err = mergePostgres(ctx, tx, min(mergeChunk, max-taken))
			} else {
				n, err = s.mergeSQLite(ctx, tx, min(mergeChunk, max-taken))
			}
			return err
		})
		if err != nil {
			return taken, err
		}
		taken += n
		if n == 0 || s.flushing.Load() > 0 {
			break // none left, or activity is flushing: it goes first
		}
	}
	return taken, nil
}

// mergeSQLite merges up to limit marks in statements of mergeStmtRows,
// stopping early when another writer waits, and deletes the marks it
// merged (the writer is this transaction's alone: none changed meanwhile).
func (s *sqlStore) mergeSQLite(ctx context.Context, tx *sql.Tx, limit int) (int, error) {
	ids, ats, err := pendingMarks(ctx, tx, limit)
	if err != nil {
		return 0, err
	}
	args := make([]any, 0, 2*len(ids)) // two a mark: session id, at
	for i, id := range ids {
		args = append(args, id, ats[i])
	}
	done := 0
	for done < len(args)/2 {
		part := args[2*done : 2*min(done+mergeStmtRows, len(args)/2)]
		n := len(part) / 2
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_active = v.column2
			FROM (VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")+`) AS v
			WHERE sessions.id = v.column1 AND sessions.active AND sessions.last_active < v.column2`, part...); err != nil {
			return 0, err
		}
		done += n
		if s.gate != nil && s.gate.waiting(prioBulk) > 0 {
			break
		}
	}
	if done == 0 {
		return 0, nil
	}
	list, _ := json.Marshal(ids[:done])
	if _, err := tx.ExecContext(ctx, `DELETE FROM session_seen WHERE session_id IN (SELECT value FROM json_each(?))`, string(list)); err != nil {
		return 0, err
	}
	return done, nil
}

// mergePostgres merges up to limit marks: it reads them (no lock), moves
// their sessions forward, and deletes the marks that did not move
// meanwhile (a flush that upserted a later one keeps it for the next
// round). The marks are locked only from the DELETE to the commit, so
// activity flushes hardly ever wait for the merger. lock_timeout keeps the
// merger from waiting long behind a termination: it gives up instead (the
// marks stay for the next round).
func mergePostgres(ctx context.Context, tx *sql.Tx, limit int) (int, error) {
	var mine bool
	if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.session_seen')),
		set_config('lock_timeout', '200ms', true), set_config('enable_hashjoin', 'off', true),
		set_config('enable_mergejoin', 'off', true), set_config('synchronous_commit', 'off', true)`).
		Scan(&mine, new(string), new(string), new(string), new(string)); err != nil || !mine {
		return 0, err
	}
	ids, ats, err := pendingMarks(ctx, tx, limit)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_active = v.at
		FROM unnest($1::text[], $2::bigint[]) AS v(id, at)
		WHERE sessions.id = v.id AND sessions.active AND sessions.last_active < v.at`, ids, ats); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM session_seen x USING unnest($1::text[], $2::bigint[]) AS v(id, at)
		WHERE x.session_id = v.id AND x.at <= v.at`, ids, ats); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// pendingMarks reads up to limit pending marks, oldest first.
func pendingMarks(ctx context.Context, tx *sql.Tx, limit int) (ids []string, ats []int64, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT session_id, at FROM session_seen ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, nil, err
		}
		ids, ats = append(ids, id), append(ats, at)
	}
	return ids, ats, rows.Err()
}
