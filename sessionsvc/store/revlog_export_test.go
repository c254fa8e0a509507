package store

import (
	"context"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// LogLockHeld reports whether the transaction logWrite hands to its
// callback holds the revocation-log advisory lock (PostgreSQL only).
func LogLockHeld(ctx context.Context, st Store) (held bool, err error) {
	s := st.(*sqlStore)
	err = s.logWrite(ctx, prioNormal, "log lock held", time.Now(), func(lt *logTx) error {
		return lt.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM pg_locks WHERE locktype = 'advisory'
			AND pid = pg_backend_pid() AND granted AND objid::bigint = $1`, lockIDLog).Scan(&held)
	})
	return held, err
}

// AppendChanges appends changes to st's revocation log in one transaction,
// as a group of concurrent revocations or a termination writes them.
func AppendChanges(ctx context.Context, st Store, changes []protocol.Change, now time.Time) error {
	return st.(*sqlStore).revokeTx(ctx, "append changes", now, func(lt *logTx) error {
		return lt.append(ctx, changes...)
	})
}

// LogStatistics waits for an ANALYZE of the revocation log that appends
// started, then reports the rows the log's statistics describe
// (pg_class.reltuples: -1 when never analyzed). PostgreSQL only.
func LogStatistics(ctx context.Context, st Store) (rows float64, err error) {
	s := st.(*sqlStore)
	s.logGrowth.done.Wait()
	err = s.r.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass('revocation_log')`).Scan(&rows)
	return rows, err
}

// SetSeqClock sets the clock st's log seqs follow (see logseq.go).
func SetSeqClock(st Store, clock func() time.Time) { st.(*sqlStore).seqClock = clock }

// SeqGaps lists the seq ranges (lo, hi] st knows no entry has.
func SeqGaps(st Store) [][2]int64 {
	var out [][2]int64
	for _, g := range st.(*sqlStore).seqGaps {
		out = append(out, [2]int64{g.lo, g.hi})
	}
	return out
}
