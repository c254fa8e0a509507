package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AuditAlertRetried is the audit event of an admin's retry of a
// dead-lettered alert (admin API and dashboard).
const AuditAlertRetried = "alert.retried"

func insertAlerts(ctx context.Context, tx *sql.Tx, alerts []Alert, now time.Time) error {
	if len(alerts) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO alerts (event, channel, payload, attempts, next_attempt, created_at)
		VALUES ($1, $2, $3, 0, $4, $5)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, a := range alerts {
		next := a.NextAttempt
		if next.IsZero() {
			next = now
		}
		created := a.CreatedAt
		if created.IsZero() {
			created = now
		}
		payload := string(a.Payload)
		if payload == "" {
			payload = "{}"
		}
		if _, err := stmt.ExecContext(ctx, a.Event, a.Channel, payload, ms(next), ms(created)); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) EnqueueAlerts(ctx context.Context, alerts []Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	return s.writeTx(ctx, "enqueue alerts", func(tx *sql.Tx) error {
		return insertAlerts(ctx, tx, alerts, time.Now().UTC())
	})
}

const alertCols = `id, event, channel, payload, attempts, next_attempt, last_error, dead, created_at, sent_at`

func scanAlert(sc rowScanner) (Alert, error) {
	var a Alert
	var payload string
	var next, created int64
	var sent sql.NullInt64
	if err := sc.Scan(&a.ID, &a.Event, &a.Channel, &payload, &a.Attempts, &next, &a.LastError, &a.Dead, &created, &sent); err != nil {
		return Alert{}, err
	}
	a.Payload = json.RawMessage(payload)
	a.NextAttempt = fromMS(next)
	a.CreatedAt = fromMS(created)
	if sent.Valid {
		t := fromMS(sent.Int64)
		a.SentAt = &t
	}
	return a, nil
}

func (s *sqlStore) ClaimAlerts(ctx context.Context, owner string, n int, now time.Time, lease time.Duration) ([]Alert, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []Alert
	err := s.writeTx(ctx, "claim alerts", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE alerts SET lease_owner = $1, lease_until = $2
			WHERE id IN (SELECT id FROM alerts WHERE sent_at IS NULL AND NOT dead AND next_attempt <= $3
				AND lease_until <= $3 ORDER BY id LIMIT $4`+s.d.skipLocked()+`)
			RETURNING `+alertCols, owner, ms(now.Add(lease)), ms(now), n)
		if err != nil {
			return err
		}
		out, err = scanAll(rows, scanAlert)
		return err
	})
	if err != nil {
		return nil, err
	}
	sortAlerts(out)
	return out, nil
}

func sortAlerts(a []Alert) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].ID < a[j-1].ID; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// sentDropKeys are the payload keys a sent alert no longer keeps: the
// user's names are needed to render the alert, not afterwards.
var sentDropKeys = []string{"username", "email"}

// MarkAlertSent marks the alert sent and drops the user's names
// (sentDropKeys) from its stored payload.
func (s *sqlStore) MarkAlertSent(ctx context.Context, id int64, now time.Time) error {
	return s.writeTx(ctx, "mark alert sent", func(tx *sql.Tx) error {
		var payload string
		if err := tx.QueryRowContext(ctx, `SELECT payload FROM alerts WHERE id = $1`, id).Scan(&payload); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE alerts SET sent_at = $1, payload = $2, lease_owner = '', lease_until = 0 WHERE id = $3`,
			ms(now), scrubPayload(payload), id)
		return err
	})
}

// scrubPayload removes sentDropKeys from a JSON object; anything else
// (not an object, not JSON) is kept as it is.
func scrubPayload(payload string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(payload), &m) != nil || m == nil {
		return payload
	}
	n := len(m)
	for _, k := range sentDropKeys {
		delete(m, k)
	}
	if len(m) == n {
		return payload
	}
	b, err := json.Marshal(m)
	if err != nil {
		return payload
	}
	return string(b)
}

// purgeAlerts deletes the alerts sent before b (Unix ms) and the
// dead-lettered ones whose last try was before b (a dead alert's
// next_attempt is its last try plus the backoff; a retry moves it to the
// retry's time). Purge runs it at retention.
func purgeAlerts(ctx context.Context, tx *sql.Tx, b int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE (sent_at IS NOT NULL AND sent_at < $1) OR (dead AND next_attempt < $1)`, b)
	return err
}

func (s *sqlStore) MarkAlertFailed(ctx context.Context, id int64, errMsg string, next time.Time, dead bool) error {
	return s.execOne(ctx, "mark alert failed", `UPDATE alerts SET attempts = attempts + 1, last_error = $1,
		next_attempt = $2, dead = $3, lease_owner = '', lease_until = 0 WHERE id = $4`, errMsg, ms(next), dead, id)
}

// RetryAlert touches only a dead-lettered alert: a pending one may be
// leased by a replica sending it right now (clearing its lease would let a
// second replica send it too), a sent one is done.
func (s *sqlStore) RetryAlert(ctx context.Context, id int64, now time.Time) error {
	return s.writeTx(ctx, "retry alert", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET dead = FALSE, attempts = 0, next_attempt = $1, lease_owner = '', lease_until = 0
			WHERE id = $2 AND dead AND sent_at IS NULL`, ms(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM alerts WHERE id = $1`, id).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		}
		return fmt.Errorf("alert %d is not dead-lettered: %w", id, ErrConflict)
	})
}

func (s *sqlStore) ListAlerts(ctx context.Context, deadOnly bool, limit int) ([]Alert, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT ` + alertCols + ` FROM alerts`
	if deadOnly {
		q += ` WHERE dead`
	}
	q += ` ORDER BY id DESC LIMIT $1`
	return readAll(ctx, s, "list alerts", scanAlert, q, limit)
}
