package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// revocationExp turns a token expiry in Unix milliseconds (0 = unknown)
// into the Unix-seconds expiry of its revocation entry.
func revocationExp(expMS int64, now time.Time) int64 {
	if expMS <= 0 {
		return now.Add(DefaultRevocationTTL).Unix()
	}
	return (expMS + 999) / 1000
}

// entryExp is the Unix-seconds expiry of a log entry that expires at exp
// (zero: DefaultRevocationTTL after now).
func entryExp(exp, now time.Time) int64 {
	if exp.IsZero() {
		return now.Add(DefaultRevocationTTL).Unix()
	}
	return exp.Unix()
}

// logTx is a write transaction that holds the revocation-log lock, and the
// only way to append to the log: sqlStore.logWrite takes the lock before
// handing one out, so no append can happen without it.
//
// Ordering: readers page through the log by seq ("seq > cursor"). On
// PostgreSQL a sequence hands out numbers at INSERT time, not at commit, so
// without care a transaction holding seq 10 could commit after another
// holding seq 11, and a reader that already advanced its cursor to 11
// would never see 10. We rule that out by serialising every transaction
// that appends to the log with a transaction-scoped advisory lock
// (dialect.lockLog, taken before the first write): seqs are then allocated
// and committed strictly in order, and a commit is visible before the lock
// is released. Log writes are rare (logins do not write to the log; only
// terminations, blocks and not-before do), so the serialisation costs
// little. On SQLite the single writer gives the same guarantee.
//
// Each entry has a subject (the key, "user:<id>" for block state or
// "nb:<id>" for not-before); appending marks the subject's previous entry
// as no longer latest, which lets the snapshot read only live entries and
// lets compaction drop superseded ones.
//
// A transaction's changes (a termination's keys, a bulk revoke, a group of
// concurrent revocations) are written in a few statements whatever their
// number: one UPDATE superseding the subjects' latest entries and one
// INSERT of every entry (INSERT … SELECT from a JSON array on SQLite, from
// unnest on PostgreSQL). Two statements per key made
// a transaction revoking thousands of keys hold the log lock (PostgreSQL)
// or the writer (SQLite) for thousands of round trips. A transaction that
// only appends (a group of revocations) is one round trip on PostgreSQL:
// see appendAlone.
type logTx struct {
	*sql.Tx
	s        *sqlStore
	now      time.Time // the entries' created_at
	appended int       // entries appended, counted once the transaction commits
	raised   bool      // the log's sequence was raised to the clock (logseq.go)
}

// logWrite runs fn in a write transaction of priority p that holds the
// revocation-log lock. The lock is the transaction's first statement: taken
// after fn had locked rows, it could deadlock against another appender
// waiting for those rows while holding the lock.
func (s *sqlStore) logWrite(ctx context.Context, p priority, op string, now time.Time, fn func(lt *logTx) error) error {
	appended := 0
	err := s.writeTxPrio(ctx, p, op, func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		lt := &logTx{Tx: tx, s: s, now: now}
		err := fn(lt)
		appended = lt.appended
		return err
	})
	if err == nil {
		s.logGrowth.grew(appended)
	}
	return err
}

// revokeTx is logWrite for what the proxies must learn about at once
// (terminations, revocations, blocks): it goes before every waiting login
// or bulk write.
func (s *sqlStore) revokeTx(ctx context.Context, op string, now time.Time, fn func(lt *logTx) error) error {
	return s.logWrite(ctx, prioRevoke, op, now, fn)
}

// append writes changes to the log in order, superseding their subjects'
// previous entries; within changes, a subject's last change becomes its
// latest entry.
func (lt *logTx) append(ctx context.Context, changes ...protocol.Change) error {
	if len(changes) == 0 {
		return nil
	}
	if !lt.raised {
		// Before the transaction's first entry: see logseq.go.
		if err := lt.s.raiseLogSeq(ctx, lt.Tx, lt.s.seqFloor()); err != nil {
			return err
		}
		lt.raised = true
	}
	subjects, latest, distinct := planAppend(changes)
	if lt.s.d.name() == "postgres" {
		for _, st := range postgresAppend(changes, subjects, latest, distinct, lt.now) {
			if _, err := lt.ExecContext(ctx, st.sql, st.args...); err != nil {
				return err
			}
		}
		lt.appended += len(changes)
		return nil
	}
	return lt.appendSQLite(ctx, changes, subjects, latest, distinct)
}

// planAppend names each change's subject, tells which changes become their
// subject's latest entry, and lists the distinct subjects.
func planAppend(changes []protocol.Change) (subjects []string, latest []bool, distinct []string) {
	subjects = make([]string, len(changes))
	last := make(map[string]int, len(changes))
	for i, c := range changes {
		subjects[i] = subjectOf(c)
		last[subjects[i]] = i
	}
	latest = make([]bool, len(changes))
	distinct = make([]string, 0, len(last))
	for i, subj := range subjects {
		if last[subj] == i {
			latest[i] = true
			distinct = append(distinct, subj)
		}
	}
	return subjects, latest, distinct
}

type pgStatement struct {
	sql  string
	args []any
}

// postgresAppend is an append on PostgreSQL: one UPDATE superseding the
// subjects' latest entries, one INSERT of every change from unnest.
func postgresAppend(changes []protocol.Change, subjects []string, latest []bool, distinct []string, now time.Time) [2]pgStatement {
	n := len(changes)
	ops, keys, users, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	exps, ats := make([]int64, n), make([]int64, n)
	for i, c := range changes {
		ops[i], keys[i], users[i], reasons[i], exps[i], ats[i] = c.Op, c.Key, c.User, c.Reason, c.Exp, c.At
	}
	return [2]pgStatement{
		{`UPDATE revocation_log SET latest = FALSE WHERE latest AND subject = ANY($1::text[])`, []any{distinct}},
		// WITH ORDINALITY … ORDER BY: seqs are drawn in the order of changes.
		{`INSERT INTO revocation_log (op, subject, key, user_id, exp, at, reason, latest, created_at)
		SELECT op, subject, key, user_id, exp, at, reason, latest, $9
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bool[])
			WITH ORDINALITY AS c(op, subject, key, user_id, exp, at, reason, latest, ord)
		ORDER BY ord`, []any{ops, subjects, keys, users, exps, ats, reasons, latest, ms(now)}},
	}
}

// appendAlone appends changes to the log in a transaction of its own (one
// that writes nothing else) at priority p. On PostgreSQL that transaction
// is one round trip (see appendPipelined); elsewhere it is logWrite.
func (s *sqlStore) appendAlone(ctx context.Context, p priority, op string, now time.Time, changes []protocol.Change) error {
	if len(changes) == 0 {
		return nil
	}
	if s.d.name() == "postgres" {
		if err := s.appendPipelined(ctx, now, changes); err != nil {
			return s.wrap(op, err)
		}
		return nil
	}
	return s.logWrite(ctx, p, op, now, func(lt *logTx) error {
		return lt.append(ctx, changes...)
	})
}

// appendPipelined is logWrite + append on PostgreSQL in one round trip: the
// log lock (with its NOTIFY), the sequence's raise to the clock (see
// logseq.go), the UPDATE and the INSERT are sent together
// as one pipelined batch under a single Sync, which PostgreSQL runs as one
// implicit transaction, committed (or rolled back) as a whole. Each
// statement of it takes its own snapshot after the one before, so the
// UPDATE sees every entry committed before the lock was granted, as in a
// logWrite transaction. Sent one statement at a time, the same transaction
// held the log lock through five round trips (BEGIN, lock, UPDATE, INSERT,
// COMMIT).
func (s *sqlStore) appendPipelined(ctx context.Context, now time.Time, changes []protocol.Change) error {
	subjects, latest, distinct := planAppend(changes)
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("append: connection is a %T, not pgx", dc)
		}
		var b pgx.Batch
		b.Queue(postgresLockLogSQL, int32(lockIDLog))
		b.Queue(s.pgSeqRaise, s.seqFloor())
		for _, st := range postgresAppend(changes, subjects, latest, distinct, now) {
			b.Queue(st.sql, st.args...)
		}
		br := sc.Conn().SendBatch(ctx, &b)
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				return err
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		s.logGrowth.grew(len(changes))
		return nil
	})
}

// SQLite's two statements read their rows from one JSON argument: the
// same two texts whatever the number of changes, prepared once on the
// writer (parsing a statement costs SQLite more than running it).
const (
	sqliteSupersede = `UPDATE revocation_log SET latest = FALSE WHERE latest AND subject IN (SELECT value FROM json_each(?1))`
	sqliteInsert    = `INSERT INTO revocation_log (op, subject, key, user_id, exp, at, reason, latest, created_at)
		SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, ?2
		FROM json_each(?1) ORDER BY key`
)

// logStmts are the writer's prepared SQLite log statements, prepared when
// the store opens: inside a write transaction the writer's one connection
// is taken, and a transaction uses them through Tx.StmtContext (on that
// connection).
type logStmts struct {
	supersede, insert   *sql.Stmt
	seqRaise, seqCreate *sql.Stmt // see raiseLogSeq
}

func (ls *logStmts) prepare(ctx context.Context, w *sql.DB) error {
	sup, err := w.PrepareContext(ctx, sqliteSupersede)
	if err != nil {
		return err
	}
	ls.supersede = sup
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{{&ls.insert, sqliteInsert}, {&ls.seqRaise, sqliteSeqRaise}, {&ls.seqCreate, sqliteSeqCreate}} {
		st, err := w.PrepareContext(ctx, p.sql)
		if err != nil {
			ls.close()
			return err
		}
		*p.dst = st
	}
	return nil
}

func (ls *logStmts) close() {
	for _, st := range []*sql.Stmt{ls.supersede, ls.insert, ls.seqRaise, ls.seqCreate} {
		if st != nil {
			_ = st.Close()
		}
	}
}

func (lt *logTx) appendSQLite(ctx context.Context, changes []protocol.Change, subjects []string, latest []bool, distinct []string) error {
	ls := &lt.s.logStmts
	subj, err := json.Marshal(distinct)
	if err != nil {
		return err
	}
	if _, err := lt.StmtContext(ctx, ls.supersede).ExecContext(ctx, string(subj)); err != nil {
		return err
	}
	rows := make([][8]any, len(changes))
	for i, c := range changes {
		rows[i] = [8]any{c.Op, subjects[i], c.Key, c.User, c.Exp, c.At, c.Reason, latest[i]}
	}
	js, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	_, err = lt.StmtContext(ctx, ls.insert).ExecContext(ctx, string(js), ms(lt.now))
	return err
}

func subjectOf(c protocol.Change) string {
	switch c.Op {
	case protocol.OpBlock, protocol.OpUnblock:
		return protocol.PrefixUser + c.User
	case protocol.OpNotBefore:
		return "nb:" + c.User
	default:
		return c.Key
	}
}

func (s *sqlStore) RevokeKeys(ctx context.Context, keys []string, reason string, exp time.Time, now time.Time) error {
	keys = nonEmpty(keys)
	if len(keys) == 0 {
		return nil
	}
	e := entryExp(exp, now)
	changes := make([]protocol.Change, len(keys))
	for i, k := range keys {
		changes[i] = protocol.Change{Op: protocol.OpRevoke, Key: k, Exp: e, Reason: reason}
	}
	return s.revokeGrouped(ctx, "revoke keys", changes, now)
}

func (s *sqlStore) SetBlocked(ctx context.Context, userID string, blocked bool, now time.Time) error {
	if userID == "" {
		return fmt.Errorf("set blocked: user id is required")
	}
	return s.revokeTx(ctx, "set blocked", now, func(lt *logTx) error {
		if err := s.d.lockUser(ctx, lt.Tx, userID); err != nil {
			return err
		}
		if _, err := lt.ExecContext(ctx, `INSERT INTO user_blocks (user_id, blocked, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET blocked = excluded.blocked, updated_at = excluded.updated_at`,
			userID, blocked, ms(now)); err != nil {
			return err
		}
		op := protocol.OpUnblock
		if blocked {
			op = protocol.OpBlock
			// Not "terminated manually" (the Strapi plugin's flag is set for
			// reason manual alone).
			if _, err := s.endWhere(ctx, lt, "user_id = $1", []any{userID}, protocol.ReasonBlocked, false); err != nil {
				return err
			}
		}
		reason := ""
		if blocked {
			reason = protocol.ReasonBlocked
		}
		return lt.append(ctx, protocol.Change{Op: op, User: userID, Reason: reason})
	})
}

func (s *sqlStore) IsBlocked(ctx context.Context, userID string) (bool, error) {
	var b bool
	err := s.readRow(ctx, `SELECT blocked FROM user_blocks WHERE user_id = $1`, userID).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("is blocked", err)
	}
	return b, nil
}

func (s *sqlStore) SetNotBefore(ctx context.Context, userID string, at, exp, now time.Time) error {
	if userID == "" {
		return fmt.Errorf("set not-before: user id is required")
	}
	return s.appendAlone(ctx, prioRevoke, "set not-before", now, []protocol.Change{
		{Op: protocol.OpNotBefore, User: userID, At: at.Unix(), Exp: entryExp(exp, now), Reason: protocol.ReasonNotBefore},
	})
}

// MaxChangesLimit caps a sync page.
const MaxChangesLimit = 100_000

func (s *sqlStore) Changes(ctx context.Context, epoch string, cursor int64, limit int, now time.Time) (protocol.SyncPage, error) {
	if limit <= 0 {
		limit = 1000
	}
	if limit > MaxChangesLimit {
		limit = MaxChangesLimit
	}
	// A read-only transaction gives the log head and what is read after it
	// one consistent view.
	tx, head, base, err := s.beginFeedRead(ctx)
	if err != nil {
		return protocol.SyncPage{}, s.wrap("changes", err)
	}
	defer func() { _ = tx.Rollback() }()
	return s.changesIn(ctx, tx, head, base, epoch, cursor, limit, now)
}

// changesIn is Changes once its transaction has read the log head (see
// beginFeedRead); limit is already bounded.
func (s *sqlStore) changesIn(ctx context.Context, tx *sql.Tx, head, base int64, epoch string, cursor int64, limit int, now time.Time) (protocol.SyncPage, error) {
	page := protocol.SyncPage{Epoch: s.epoch, Cursor: cursor, Now: now.Unix(), Changes: []protocol.Change{}}
	reset := cursor <= 0 || epoch != s.epoch // and a cursor past the log's head, below
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	if err := s.feed.refresh(ctx, tx, head, base); err != nil {
		s.feed.built = false
		s.feed.invalidate()
		return protocol.SyncPage{}, s.wrap("changes", err)
	}
	// A concurrent reader with a newer snapshot may have brought the feed
	// past this transaction's head (see feedCache.refresh): the feed is
	// what is answered from, so its head is the log's.
	head = max(head, s.feed.head)
	if cursor > head || s.inSeqGap(cursor) {
		// The client saw entries this log no longer has: the store was
		// restored from a backup (compaction never removes the head, see
		// Compact; and no seq of this log lies in a gap, see logseq.go).
		// A snapshot: the client keeps what it had seen.
		reset = true
	}
	var got []protocol.Change
	if reset {
		page.Reset = true
		page.Cursor = 0
		got = s.feed.snapshot(limit, now.Unix())
		page.Total = int64(len(s.feed.live) - s.feed.tombs)
	} else if d, ok := s.feed.delta(cursor, limit); ok {
		got = d
	} else {
		rows, err := tx.QueryContext(ctx, `SELECT seq, op, key, user_id, exp, at, reason FROM revocation_log
			WHERE seq > $1 ORDER BY seq LIMIT $2`, cursor, limit+1)
		if err != nil {
			return protocol.SyncPage{}, s.wrap("changes", err)
		}
		if got, err = scanChanges(rows, nil); err != nil {
			return protocol.SyncPage{}, s.wrap("changes", err)
		}
	}
	if got != nil {
		page.Changes = got
	}
	if len(page.Changes) > limit {
		page.Changes = page.Changes[:limit]
		page.More = true
	}
	if n := len(page.Changes); n > 0 {
		page.Cursor = page.Changes[n-1].Seq
	}
	if reset && !page.More && s.feed.head > page.Cursor {
		// A complete snapshot reflects the whole log up to its head: hand
		// out the head as cursor, so entries that are not live (unrevokes,
		// superseded or expired ones) are not read again as a delta, and
		// an empty snapshot of a non-empty log does not leave the client
		// at cursor 0 (which would ask for a snapshot forever).
		page.Cursor = s.feed.head
	}
	return page, nil
}

func (s *sqlStore) Compact(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.writeTx(ctx, "compact", func(tx *sql.Tx) error {
		// The entry at the head stays (superseded or expired, it is
		// harmless): the head never goes back but by a restore, which
		// Changes can then tell from a client's cursor.
		res, err := tx.ExecContext(ctx, `DELETE FROM revocation_log WHERE (NOT latest OR (exp <> 0 AND exp <= $1))
			AND seq < (SELECT MAX(seq) FROM revocation_log)`, now.Unix())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
