package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

func (s *sqlStore) GetSettings(ctx context.Context) (json.RawMessage, error) {
	var doc string
	err := s.readRow(ctx, `SELECT doc FROM settings WHERE id = 1`).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap("get settings", err)
	}
	return json.RawMessage(doc), nil
}

func (s *sqlStore) PutSettings(ctx context.Context, doc json.RawMessage) error {
	if !json.Valid(doc) {
		return fmt.Errorf("put settings: document is not valid JSON")
	}
	return s.writeTx(ctx, "put settings", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (id, doc) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, string(doc))
		return err
	})
}
