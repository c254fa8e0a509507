package store

import (
	"context"
	"database/sql"
	"time"
)

func (s *sqlStore) RecordFailedLogin(ctx context.Context, scope string, now time.Time, window time.Duration) (int, error) {
	var n int
	err := s.writeTx(ctx, "record failed login", func(tx *sql.Tx) error {
		since := ms(now.Add(-window))
		if _, err := tx.ExecContext(ctx, `DELETE FROM failed_logins WHERE scope = $1 AND at < $2`, scope, since); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO failed_logins (scope, at) VALUES ($1, $2)`, scope, ms(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM failed_logins WHERE scope = $1 AND at >= $2 AND at <= $3`,
			scope, since, ms(now)).Scan(&n)
	})
	return n, err
}

func (s *sqlStore) CountFailedLogins(ctx context.Context, scope string, since time.Time) (int, error) {
	var n int
	if err := s.readRow(ctx, `SELECT COUNT(*) FROM failed_logins WHERE scope = $1 AND at >= $2`, scope, ms(since)).Scan(&n); err != nil {
		return 0, s.wrap("count failed logins", err)
	}
	return n, nil
}

func (s *sqlStore) ClearFailedLogins(ctx context.Context, scope string) error {
	return s.writeTx(ctx, "clear failed logins", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM failed_logins WHERE scope = $1`, scope)
		return err
	})
}
