package store

import (
	"context"
	"database/sql"
	"sort"
	"strings"
)

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
	// A fixed order keeps two replicas' flushes from deadlocking on
	// PostgreSQL and walks SQLite's key index in order.
	sort.Strings(order)
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

// activitySQLite moves sessions forward in statements of activityStmtRows
// keys, up to activityChunk keys, and stops early when a more urgent writer
// waits. Each statement joins a VALUES list to the key index and the
// sessions' primary key (several keys of one session collapse to their
// latest mark). It returns the sessions updated and the keys done.
func (s *sqlStore) activitySQLite(ctx context.Context, tx *sql.Tx, keys []string, latest map[string]int64) (updated, done int, err error) {
	stmtFor := func(n int) string {
		return `UPDATE sessions SET last_active = v.at
			FROM (SELECT k.session_id AS sid, max(m.column2) AS at
				FROM (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + `) AS m
				JOIN session_keys k ON k.key = m.column1 GROUP BY k.session_id) AS v
			WHERE sessions.id = v.sid AND sessions.active AND sessions.last_active < v.at`
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

// activityPostgres moves a chunk forward with one statement over two
// arrays (one round trip, one plan whatever the chunk size). Several keys
// of one session collapse to their latest mark first. lock_timeout keeps
// a flush from holding rows while it waits behind a termination: it gives
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
	res, err := tx.ExecContext(ctx, `UPDATE sessions SET last_active = v.at
		FROM (SELECT k.session_id, max(m.at) AS at
			FROM unnest($1::text[], $2::bigint[]) AS m(key, at)
			JOIN session_keys k ON k.key = m.key
			GROUP BY k.session_id) AS v
		WHERE sessions.id = v.session_id AND sessions.active AND sessions.last_active < v.at`, keys, ats)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
