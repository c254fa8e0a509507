package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
type logTx struct {
	*sql.Tx
	now               time.Time // the entries' created_at
	supersede, insert *sql.Stmt // prepared at the first append
}

// logWrite runs fn in a write transaction of priority p that holds the
// revocation-log lock. The lock is the transaction's first statement: taken
// after fn had locked rows, it could deadlock against another appender
// waiting for those rows while holding the lock.
func (s *sqlStore) logWrite(ctx context.Context, p priority, op string, now time.Time, fn func(lt *logTx) error) error {
	return s.writeTxPrio(ctx, p, op, func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		lt := &logTx{Tx: tx, now: now}
		defer lt.close()
		return fn(lt)
	})
}

// revokeTx is logWrite for what the proxies must learn about at once
// (terminations, revocations, blocks): it goes before every waiting login
// or bulk write.
func (s *sqlStore) revokeTx(ctx context.Context, op string, now time.Time, fn func(lt *logTx) error) error {
	return s.logWrite(ctx, prioRevoke, op, now, fn)
}

func (lt *logTx) prepare(ctx context.Context) error {
	sup, err := lt.PrepareContext(ctx, `UPDATE revocation_log SET latest = FALSE WHERE subject = $1 AND latest`)
	if err != nil {
		return err
	}
	ins, err := lt.PrepareContext(ctx, `INSERT INTO revocation_log (op, subject, key, user_id, exp, at, reason, latest, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8)`)
	if err != nil {
		sup.Close()
		return err
	}
	lt.supersede, lt.insert = sup, ins
	return nil
}

func (lt *logTx) close() {
	if lt.insert != nil {
		lt.supersede.Close()
		lt.insert.Close()
	}
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

// append writes c to the log, superseding its subject's previous entry.
func (lt *logTx) append(ctx context.Context, c protocol.Change) error {
	if lt.insert == nil {
		if err := lt.prepare(ctx); err != nil {
			return err
		}
	}
	subject := subjectOf(c)
	if _, err := lt.supersede.ExecContext(ctx, subject); err != nil {
		return err
	}
	_, err := lt.insert.ExecContext(ctx, c.Op, subject, c.Key, c.User, c.Exp, c.At, c.Reason, ms(lt.now))
	return err
}

func (s *sqlStore) RevokeKeys(ctx context.Context, keys []string, reason string, exp time.Time, now time.Time) error {
	keys = nonEmpty(keys)
	if len(keys) == 0 {
		return nil
	}
	e := entryExp(exp, now)
	return s.revokeTx(ctx, "revoke keys", now, func(lt *logTx) error {
		for _, k := range keys {
			if err := lt.append(ctx, protocol.Change{Op: protocol.OpRevoke, Key: k, Exp: e, Reason: reason}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *sqlStore) SetBlocked(ctx context.Context, userID string, blocked bool, now time.Time) error {
	if userID == "" {
		return fmt.Errorf("set blocked: user id is required")
	}
	return s.revokeTx(ctx, "set blocked", now, func(lt *logTx) error {
		if _, err := lt.ExecContext(ctx, `INSERT INTO user_blocks (user_id, blocked, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET blocked = excluded.blocked, updated_at = excluded.updated_at`,
			userID, blocked, ms(now)); err != nil {
			return err
		}
		op := protocol.OpUnblock
		if blocked {
			op = protocol.OpBlock
			if _, err := s.endWhere(ctx, lt, "user_id = $1", []any{userID}, protocol.ReasonBlocked, true, now); err != nil {
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
	return s.revokeTx(ctx, "set not-before", now, func(lt *logTx) error {
		return lt.append(ctx, protocol.Change{Op: protocol.OpNotBefore, User: userID, At: at.Unix(), Exp: entryExp(exp, now), Reason: protocol.ReasonNotBefore})
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
		return protocol.SyncPage{}, s.wrap("changes", err)
	}
	// A concurrent reader with a newer snapshot may have brought the feed
	// past this transaction's head (see feedCache.refresh): the feed is
	// what is answered from, so its head is the log's.
	head = max(head, s.feed.head)
	if cursor > head {
		// The client saw entries this log no longer has: the store was
		// restored from a backup (compaction never removes the head, see
		// Compact). A snapshot: the client keeps what it had seen.
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
