package store

import (
	"context"
	"time"
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
