package store

import (
	"context"
	"database/sql"
	"time"
)

const adminCols = `id, name, hash, created_at, last_used, revoked`

func scanAdmin(sc rowScanner) (AdminToken, error) {
	var t AdminToken
	var created int64
	var used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &t.Hash, &created, &used, &t.Revoked); err != nil {
		return AdminToken{}, err
	}
	t.CreatedAt = fromMS(created)
	if used.Valid {
		u := fromMS(used.Int64)
		t.LastUsed = &u
	}
	return t, nil
}

func (s *sqlStore) CreateAdminToken(ctx context.Context, name, hash string, now time.Time) (AdminToken, error) {
	var t AdminToken
	err := s.writeTx(ctx, "create admin token", func(tx *sql.Tx) error {
		var err error
		t, err = scanAdmin(tx.QueryRowContext(ctx, `INSERT INTO admin_tokens (name, hash, created_at, revoked)
			VALUES ($1, $2, $3, FALSE) RETURNING `+adminCols, name, hash, ms(now)))
		return err
	})
	return t, err
}

// adminUseGranularity limits last-used writes to one per token per minute.
const adminUseGranularity = time.Minute

func (s *sqlStore) FindAdminToken(ctx context.Context, hash string, now time.Time) (AdminToken, error) {
	t, err := scanAdmin(s.readRow(ctx, `SELECT `+adminCols+` FROM admin_tokens WHERE hash = $1 AND NOT revoked`, hash))
	if err != nil {
		return AdminToken{}, s.wrap("find admin token", err)
	}
	if t.LastUsed == nil || now.Sub(*t.LastUsed) >= adminUseGranularity {
		if err := s.writeTx(ctx, "record admin token use", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE admin_tokens SET last_used = $1 WHERE id = $2`, ms(now), t.ID)
			return err
		}); err != nil {
			return AdminToken{}, err
		}
		u := now.UTC()
		t.LastUsed = &u
	}
	return t, nil
}

func (s *sqlStore) ListAdminTokens(ctx context.Context) ([]AdminToken, error) {
	return readAll(ctx, s, "list admin tokens", scanAdmin, `SELECT `+adminCols+` FROM admin_tokens ORDER BY id`)
}

func (s *sqlStore) RevokeAdminToken(ctx context.Context, id int64) error {
	return s.writeTx(ctx, "revoke admin token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE admin_tokens SET revoked = TRUE WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
