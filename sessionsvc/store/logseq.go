package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The revocation log's seqs follow the clock.
//
// A proxy's cursor is the seq of the last entry it applied, and the epoch
// (meta) outlives a restore from a backup: the restored log goes on from
// the backup's head while a proxy that followed the lost timeline holds a
// cursor past it. Were seqs dense (1, 2, 3, …), the entries appended after
// the restore would be numbered from the backup's head up, and a proxy
// asking "after cursor" would skip those numbered at or below its cursor,
// forever. So no entry is numbered below the time it is written at, in
// microseconds since the Unix epoch: before its first append, every log
// transaction moves the sequence forward to the clock (never back: a clock
// that goes back leaves it where it was). A cursor handed out before a
// restore is then below every seq written after it, as long as the log
// grew by less than a million entries a second (a seq runs ahead of the
// clock only by a burst's size), and a delta from it holds every new
// entry. This needs no reopen: it holds for a database restored or rewound
// under a running sessionsvc too.
//
// Opening the store does more: under the log lock it moves the sequence to
// the clock and records the range skipped, from the log's head to the new
// sequence value (a "gap"; meta 'seq_gaps', the last maxSeqGaps). No seq of
// this timeline lies in a gap, so a cursor inside one was handed out by a
// timeline this database lost (a restore, then the reopen that recorded
// the gap): the proxy gets a snapshot, which also brings back what the
// restored log holds and the lost timeline had superseded.
//
// Seqs stay exact in JSON (below 2⁵³ until the year 2255) and in the
// binary page (uvarint steps).

// seqGap is a range (lo, hi] of seqs that were skipped: no entry has a seq in it.
type seqGap struct{ lo, hi int64 }

// maxSeqGaps bounds the gaps kept in meta (one per open of the store).
const maxSeqGaps = 64

// seqFloor is the least seq the next log transaction may write: the
// clock in microseconds.
func (s *sqlStore) seqFloor() int64 {
	now := time.Now
	if s.seqClock != nil {
		now = s.seqClock
	}
	return now().UnixMicro()
}

// SQLite: AUTOINCREMENT numbers a row above both sqlite_sequence's value
// and the largest seq, so raising the former raises the next seq. The
// row exists once the log had an entry; before, it is inserted.
const (
	sqliteSeqRaise  = `UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'revocation_log' AND seq < ?1`
	sqliteSeqCreate = `INSERT INTO sqlite_sequence (name, seq) SELECT 'revocation_log', ?1
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocation_log')`
	sqliteSeqRead = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocation_log'), 0)`
)

// postgresSeqSQL builds the statements that raise and read the log's
// sequence, named seq as pg_get_serial_sequence formats it. setval(v) makes
// the next value v+1; the sequence is only ever moved forward.
func postgresSeqSQL(seq string) (raise, read string) {
	lit := "'" + strings.ReplaceAll(seq, "'", "''") + "'"
	raise = `SELECT setval(` + lit + `::regclass, $1) FROM ` + seq +
		` WHERE last_value < $1 OR (last_value = $1 AND NOT is_called)`
	read = `SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM ` + seq
	return raise, read
}

// raiseLogSeq moves the log's sequence forward so that every seq written
// after it is above floor; tx holds the log lock (PostgreSQL) or the
// writer (SQLite).
func (s *sqlStore) raiseLogSeq(ctx context.Context, tx *sql.Tx, floor int64) error {
	if s.d.name() == "postgres" {
		_, err := tx.ExecContext(ctx, s.pgSeqRaise, floor)
		return err
	}
	raise, create := s.logStmts.seqRaise, s.logStmts.seqCreate
	var err error
	var res sql.Result
	if raise != nil {
		res, err = tx.StmtContext(ctx, raise).ExecContext(ctx, floor)
	} else {
		res, err = tx.ExecContext(ctx, sqliteSeqRaise, floor)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	if create != nil {
		_, err = tx.StmtContext(ctx, create).ExecContext(ctx, floor)
	} else {
		_, err = tx.ExecContext(ctx, sqliteSeqCreate, floor)
	}
	return err
}

// openLogSeq runs once the schema is migrated: it moves the log's sequence
// to the clock and records the gap this opens in meta, then loads the
// gaps. It is a transaction of its own, holding the log lock so that no
// replica appends between the head read and the move.
func (s *sqlStore) openLogSeq(ctx context.Context) error {
	if s.d.name() == "postgres" {
		var seq sql.NullString
		if err := s.w.QueryRowContext(ctx, `SELECT pg_get_serial_sequence('revocation_log', 'seq')`).Scan(&seq); err != nil {
			return s.wrap("find the log's sequence", err)
		}
		if !seq.Valid || seq.String == "" {
			return fmt.Errorf("find the log's sequence: revocation_log.seq has none")
		}
		s.pgSeqRaise, s.pgSeqRead = postgresSeqSQL(seq.String)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("advance the log's sequence", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.d.name() == "postgres" {
		// The lock alone: no NOTIFY, nothing was appended.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1)`, int32(lockIDLog)); err != nil {
			return s.wrap("lock the log", err)
		}
	}
	var head, next int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM revocation_log`).Scan(&head); err != nil {
		return s.wrap("read the log's head", err)
	}
	if err := s.raiseLogSeq(ctx, tx, s.seqFloor()); err != nil {
		return s.wrap("advance the log's sequence", err)
	}
	read := sqliteSeqRead
	if s.d.name() == "postgres" {
		read = s.pgSeqRead
	}
	if err := tx.QueryRowContext(ctx, read).Scan(&next); err != nil {
		return s.wrap("read the log's sequence", err)
	}
	var raw sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'seq_gaps'`).Scan(&raw); err != nil && err != sql.ErrNoRows {
		return s.wrap("read the log's gaps", err)
	}
	gaps := parseSeqGaps(raw.String)
	if next > head {
		gaps = addSeqGap(gaps, seqGap{lo: head, hi: next})
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('seq_gaps', $1)
			ON CONFLICT (k) DO UPDATE SET v = excluded.v`, formatSeqGaps(gaps)); err != nil {
			return s.wrap("record the log's gap", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("advance the log's sequence", err)
	}
	s.seqGaps = gaps
	return nil
}

// inSeqGap tells a cursor no entry of this log's timeline can have had.
func (s *sqlStore) inSeqGap(cursor int64) bool {
	for _, g := range s.seqGaps {
		if g.lo < cursor && cursor <= g.hi {
			return true
		}
	}
	return false
}

// addSeqGap appends g, keeping the last maxSeqGaps.
func addSeqGap(gaps []seqGap, g seqGap) []seqGap {
	gaps = append(gaps, g)
	if n := len(gaps) - maxSeqGaps; n > 0 {
		gaps = append([]seqGap(nil), gaps[n:]...)
	}
	return gaps
}

// parseSeqGaps reads "lo:hi lo:hi …"; what does not parse is left out.
func parseSeqGaps(v string) []seqGap {
	var out []seqGap
	for _, f := range strings.Fields(v) {
		a, b, ok := strings.Cut(f, ":")
		lo, err1 := strconv.ParseInt(a, 10, 64)
		hi, err2 := strconv.ParseInt(b, 10, 64)
		if ok && err1 == nil && err2 == nil && lo < hi {
			out = append(out, seqGap{lo: lo, hi: hi})
		}
	}
	return out
}

func formatSeqGaps(gaps []seqGap) string {
	var b strings.Builder
	for i, g := range gaps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(g.lo, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(g.hi, 10))
	}
	return b.String()
}
