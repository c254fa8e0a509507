package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Reasons of refused logins (LoginRefusals; the dashboard's analytics).
const (
	// RefusalCredentials: the app refused the login (a failed login
	// reported by the proxy).
	RefusalCredentials = "credentials"
	// RefusalLockout: refused as locked out before the app saw it, or at
	// its registration (attempts in flight at the threshold included).
	RefusalLockout = "lockout"
	// RefusalPolicy: refused by the login policy (at the pre-login check,
	// at registration, or an unreadable login answer).
	RefusalPolicy = "policy"
	// RefusalBlocked: the login of a blocked user, refused at registration.
	RefusalBlocked = "blocked"
)

// RefusalReasons lists every refusal reason.
var RefusalReasons = []string{RefusalCredentials, RefusalLockout, RefusalBlocked, RefusalPolicy}

// refusalMinute is the counting bucket of login_refusals (migration 0110).
const refusalMinute = 60_000

// insertRefusal counts one refused login in its minute.
func insertRefusal(ctx context.Context, tx *sql.Tx, reason string, at time.Time) error {
	m := ms(at)
	m -= m % refusalMinute
	_, err := tx.ExecContext(ctx, `INSERT INTO login_refusals (at, reason, n) VALUES ($1, $2, 1)
		ON CONFLICT (at, reason) DO UPDATE SET n = login_refusals.n + 1`, m, reason)
	return err
}

func (s *sqlStore) RecordLoginRefusal(ctx context.Context, reason string, at time.Time) error {
	if !slices.Contains(RefusalReasons, reason) {
		return fmt.Errorf("record login refusal: unknown reason %q", reason)
	}
	return s.writeTx(ctx, "record login refusal", func(tx *sql.Tx) error { return insertRefusal(ctx, tx, reason, at) })
}

func (s *sqlStore) CountLoginRefusals(ctx context.Context, from, to time.Time) (map[string]int, error) {
	rows, err := s.read(ctx, `SELECT reason, CAST(SUM(n) AS BIGINT) FROM login_refusals WHERE at >= $1 AND at < $2 GROUP BY reason`, ms(from), ms(to))
	if err != nil {
		return nil, s.wrap("count login refusals", err)
	}
	defer rows.Close()
	out := make(map[string]int, len(RefusalReasons))
	for _, r := range RefusalReasons {
		out[r] = 0
	}
	for rows.Next() {
		var reason string
		var n int
		if err := rows.Scan(&reason, &n); err != nil {
			return nil, s.wrap("count login refusals", err)
		}
		out[reason] = n
	}
	return out, s.wrap("count login refusals", rows.Err())
}

func (s *sqlStore) PruneLoginRefusals(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.writeTxPrio(ctx, prioBulk, "prune login refusals", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM login_refusals WHERE at < $1`, ms(before))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
