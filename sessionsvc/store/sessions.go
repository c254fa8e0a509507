package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

const sessionCols = `id, user_id, ip, user_agent, login_time, last_active, logout_time, active,
	terminated_manually, termination_reason, device_type, browser_name, os_name, geo,
	security_score, score_reasons, expires_at, route, locale, user_document_id, username, user_email, user_lookup`

// lastSeen is a session's lastActive read through session_seen (migration
// 0080): its pending activity mark when later than the merged column, for
// active sessions (an ended session's last mark was merged when it
// ended). It is written for a query whose FROM is the sessions table.
const lastSeen = `COALESCE((SELECT x.at FROM session_seen x WHERE x.session_id = sessions.id
	AND sessions.active AND x.at > sessions.last_active), sessions.last_active)`

// sessionColsSeen is sessionCols with lastActive read through session_seen.
var sessionColsSeen = strings.Replace(sessionCols, "last_active", lastSeen, 1)

func scanSession(sc rowScanner) (*Session, error) {
	var (
		ss               Session
		login, last, exp int64
		logout           sql.NullInt64
		geo              sql.NullString
		reasons          string
	)
	if err := sc.Scan(&ss.ID, &ss.UserID, &ss.IP, &ss.UserAgent, &login, &last, &logout, &ss.Active,
		&ss.TerminatedManually, &ss.TerminationReason, &ss.DeviceType, &ss.BrowserName, &ss.OSName, &geo,
		&ss.SecurityScore, &reasons, &exp, &ss.Route, &ss.Locale,
		&ss.UserDocumentID, &ss.Username, &ss.UserEmail, &ss.UserLookup); err != nil {
		return nil, err
	}
	ss.LoginTime = fromMS(login)
	ss.LastActive = fromMS(last)
	ss.ExpiresAt = fromMS(exp)
	if logout.Valid {
		t := fromMS(logout.Int64)
		ss.LogoutTime = &t
	}
	if geo.Valid && geo.String != "" {
		if g, ok := parseGeo(geo.String); ok {
			ss.Geo = &g
		}
	}
	if reasons != "" && reasons != "[]" {
		ss.ScoreReasons = parseReasons(reasons)
	}
	return &ss, nil
}

func (s *sqlStore) CreateSession(ctx context.Context, ss *Session, keys []SessionKey, alerts []Alert) error {
	if ss == nil || ss.UserID == "" {
		return fmt.Errorf("create session: user id is required: %w", ErrInvalid)
	}
	if ss.ID == "" {
		ss.ID = NewSessionID()
	}
	if ss.LoginTime.IsZero() {
		ss.LoginTime = time.Now().UTC()
	}
	if ss.LastActive.Before(ss.LoginTime) {
		ss.LastActive = ss.LoginTime
	}
	ss.Active = true
	ss.LogoutTime = nil
	for _, k := range keys {
		if k.ExpiresAt.After(ss.ExpiresAt) {
			ss.ExpiresAt = k.ExpiresAt
		}
	}
	var geo any
	country := ""
	if ss.Geo != nil {
		b, _ := json.Marshal(ss.Geo)
		geo = string(b)
		country = ss.Geo.Country
	}
	reasons := "[]"
	if len(ss.ScoreReasons) > 0 {
		b, _ := json.Marshal(ss.ScoreReasons)
		reasons = string(b)
	}
	return s.writeTx(ctx, "create session", func(tx *sql.Tx) error {
		// The block check and the insert are one step for SetBlocked: it
		// holds the same user lock while it blocks and ends the user's
		// sessions (SQLite: one writer does it).
		if err := s.d.lockUser(ctx, tx, ss.UserID); err != nil {
			return err
		}
		var blocked bool
		err := tx.QueryRowContext(ctx, `SELECT blocked FROM user_blocks WHERE user_id = $1`, ss.UserID).Scan(&blocked)
		switch {
		case err == nil && blocked:
			return ErrBlocked
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, ip, user_agent, login_time, last_active,
			active, terminated_manually, termination_reason, device_type, browser_name, os_name, geo, country,
			security_score, score_reasons, expires_at, route, locale, user_document_id, username, user_email, user_lookup)
			VALUES ($1, $2, $3, $4, $5, $6, TRUE, FALSE, '', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			ss.ID, ss.UserID, ss.IP, ss.UserAgent, ms(ss.LoginTime), ms(ss.LastActive),
			ss.DeviceType, ss.BrowserName, ss.OSName, geo, country, ss.SecurityScore, reasons,
			ms(ss.ExpiresAt), ss.Route, ss.Locale, ss.UserDocumentID, ss.Username, ss.UserEmail, ss.UserLookup)
		if err != nil {
			return err
		}
		if err := insertKeys(ctx, tx, ss.ID, keys); err != nil {
			return err
		}
		return insertAlerts(ctx, tx, alerts, ss.LoginTime)
	})
}

// insertKeys attaches keys to a session. A key already known (the same
// token registered again) is moved to this session.
func insertKeys(ctx context.Context, tx *sql.Tx, sessionID string, keys []SessionKey) error {
	if len(keys) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO session_keys (key, session_id, kind, expires_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, kind = excluded.kind,
			expires_at = excluded.expires_at, rotated_at = NULL`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, k := range keys {
		if k.Key == "" {
			continue
		}
		kind := k.Kind
		if kind == "" {
			kind = KeyAccess
		}
		if _, err := stmt.ExecContext(ctx, k.Key, sessionID, string(kind), ms(k.ExpiresAt)); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) GetSession(ctx context.Context, id string) (*Session, error) {
	ss, err := scanSession(s.readRow(ctx, `SELECT `+sessionColsSeen+` FROM sessions WHERE id = $1`, id))
	if err != nil {
		return nil, s.wrap("get session", err)
	}
	return ss, nil
}

func (s *sqlStore) FindSessionByKeys(ctx context.Context, keys []string) (*Session, error) {
	keys = nonEmpty(keys)
	if len(keys) == 0 {
		return nil, fmt.Errorf("find session: %w", ErrNotFound)
	}
	args := stringArgs(keys)
	q := `SELECT ` + sessionColsSeen + ` FROM sessions WHERE id IN
		(SELECT session_id FROM session_keys WHERE key IN (` + s.placeholders(1, len(keys)) + `))
		ORDER BY active DESC, login_time DESC LIMIT 1`
	ss, err := scanSession(s.readRow(ctx, q, args...))
	if err != nil {
		return nil, s.wrap("find session by keys", err)
	}
	return ss, nil
}

func (s *sqlStore) AddKeys(ctx context.Context, sessionID string, keys []SessionKey) error {
	return s.writeTx(ctx, "add keys", func(tx *sql.Tx) error {
		return addKeys(ctx, tx, sessionID, keys)
	})
}

func addKeys(ctx context.Context, tx *sql.Tx, sessionID string, keys []SessionKey) error {
	var exp int64
	if err := tx.QueryRowContext(ctx, `SELECT expires_at FROM sessions WHERE id = $1`, sessionID).Scan(&exp); err != nil {
		return err
	}
	if err := insertKeys(ctx, tx, sessionID, keys); err != nil {
		return err
	}
	maxExp := exp
	for _, k := range keys {
		if v := ms(k.ExpiresAt); v > maxExp {
			maxExp = v
		}
	}
	if maxExp != exp {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET expires_at = $1 WHERE id = $2`, maxExp, sessionID); err != nil {
			return err
		}
	}
	return nil
}

// keyRow is a session key as stored.
type keyRow struct {
	key     string
	session string
	exp     int64
	rotated bool
}

func (s *sqlStore) Refresh(ctx context.Context, presented []string, newKeys []SessionKey, now time.Time) (RefreshOutcome, error) {
	return s.refresh(ctx, presented, newKeys, true, now)
}

// CheckRefresh decides about a refresh the upstream refused: a presented
// key that was already rotated is still reuse (and ends the session), but
// nothing is rotated or attached.
func (s *sqlStore) CheckRefresh(ctx context.Context, presented []string, now time.Time) (RefreshOutcome, error) {
	return s.refresh(ctx, presented, nil, false, now)
}

func (s *sqlStore) refresh(ctx context.Context, presented []string, newKeys []SessionKey, rotate bool, now time.Time) (RefreshOutcome, error) {
	presented = nonEmpty(presented)
	if len(presented) == 0 {
		return RefreshOutcome{}, fmt.Errorf("refresh: no keys presented: %w", ErrNotFound)
	}
	var out RefreshOutcome
	err := s.logWrite(ctx, prioNormal, "refresh", now, func(tx *logTx) error {
		args := stringArgs(presented)
		rows, err := tx.QueryContext(ctx, `SELECT key, session_id, rotated_at FROM session_keys WHERE key IN (`+
			s.placeholders(1, len(presented))+`)`, args...)
		if err != nil {
			return err
		}
		var found []keyRow
		for rows.Next() {
			var kr keyRow
			var rot sql.NullInt64
			if err := rows.Scan(&kr.key, &kr.session, &rot); err != nil {
				rows.Close()
				return err
			}
			kr.rotated = rot.Valid
			found = append(found, kr)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(found) == 0 {
			return ErrNotFound
		}
		sessionID := found[0].session
		out.SessionID = sessionID
		var active bool
		var reason string
		if err := tx.QueryRowContext(ctx, `SELECT active, termination_reason FROM sessions WHERE id = $1`, sessionID).
			Scan(&active, &reason); err != nil {
			return err
		}
		if !active {
			out.Reason = reason
			return nil
		}
		for _, kr := range found {
			if kr.rotated {
				if _, err := s.endWhere(ctx, tx, "id = $1", []any{sessionID}, protocol.ReasonReuse, false); err != nil {
					return err
				}
				out.Reason = protocol.ReasonReuse
				return nil
			}
		}
		out.Allowed = true
		if !rotate {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE session_keys SET rotated_at = $1 WHERE key IN (`+
			s.placeholders(2, len(presented))+`) AND kind = 'refresh'`, append([]any{ms(now)}, args...)...); err != nil {
			return err
		}
		if len(newKeys) > 0 {
			if err := addKeys(ctx, tx.Tx, sessionID, newKeys); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET last_active = $1 WHERE id = $2 AND last_active < $1`, ms(now), sessionID)
		return err
	})
	if err != nil {
		return RefreshOutcome{}, err
	}
	return out, nil
}

func (s *sqlStore) EndSessions(ctx context.Context, f EndFilter, reason string, manual bool, now time.Time) ([]string, error) {
	if len(f.SessionIDs) == 0 && f.UserID == "" {
		return nil, fmt.Errorf("end sessions: a session id or user id is required")
	}
	var where []string
	var args []any
	if len(f.SessionIDs) > 0 {
		// Numbered, not positional: endWhere puts other arguments before these in the text.
		where = append(where, "id IN ("+numbered(1, len(f.SessionIDs))+")")
		args = append(args, stringArgs(f.SessionIDs)...)
	}
	if f.UserID != "" {
		args = append(args, f.UserID)
		where = append(where, "user_id = $"+strconv.Itoa(len(args)))
	}
	if f.ExceptSessionID != "" {
		args = append(args, f.ExceptSessionID)
		where = append(where, "id <> $"+strconv.Itoa(len(args)))
	}
	var ended []string
	err := s.revokeTx(ctx, "end sessions", now, func(tx *logTx) error {
		if err := s.revokeUnregistered(ctx, tx, f.AlsoRevoke, f.AlsoRevokeUntil, reason); err != nil {
			return err
		}
		var err error
		ended, err = s.endWhere(ctx, tx, strings.Join(where, " AND "), args, reason, manual)
		return err
	})
	return ended, err
}

// revokeUnregistered logs a revoke change, until exp, for each of keys that
// no session holds. A registered key is left to its session: it is revoked
// when the session ends, with the expiry of its own token, which an entry
// with another expiry must not supersede.
func (s *sqlStore) revokeUnregistered(ctx context.Context, tx *logTx, keys []string, exp time.Time, reason string) error {
	keys = nonEmpty(keys)
	if len(keys) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT key FROM session_keys WHERE key IN (`+s.placeholders(1, len(keys))+`)`, stringArgs(keys)...)
	if err != nil {
		return err
	}
	held := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		held[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	e := entryExp(exp, tx.now)
	var changes []protocol.Change
	for _, k := range keys {
		if !held[k] {
			changes = append(changes, protocol.Change{Op: protocol.OpRevoke, Key: k, Exp: e, Reason: reason})
		}
	}
	return tx.append(ctx, changes...)
}

// endWhere ends the active sessions matching cond (whose placeholders start
// at $1) and logs a revoke change for each of their keys, at the
// transaction's time. A session's pending activity mark (session_seen) is
// merged as it ends: ended sessions are read without it.
func (s *sqlStore) endWhere(ctx context.Context, tx *logTx, cond string, args []any, reason string, manual bool) ([]string, error) {
	now := tx.now
	n := len(args)
	q := `UPDATE sessions SET active = FALSE, last_active = ` + lastSeen + `, logout_time = $` + strconv.Itoa(n+1) +
		`, termination_reason = $` + strconv.Itoa(n+2) + `, terminated_manually = $` + strconv.Itoa(n+3) +
		` WHERE active AND (` + cond + `) RETURNING id, expires_at`
	rows, err := tx.QueryContext(ctx, q, append(args, ms(now), reason, manual)...)
	if err != nil {
		return nil, err
	}
	var ids []string
	sessExp := map[string]int64{}
	for rows.Next() {
		var id string
		var exp int64
		if err := rows.Scan(&id, &exp); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
		sessExp[id] = exp
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var changes []protocol.Change
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		pargs := stringArgs(part)
		krows, err := tx.QueryContext(ctx, `SELECT key, session_id, expires_at FROM session_keys WHERE session_id IN (`+
			s.placeholders(1, len(part))+`)`, pargs...)
		if err != nil {
			return nil, err
		}
		var keys []keyRow
		for krows.Next() {
			var kr keyRow
			if err := krows.Scan(&kr.key, &kr.session, &kr.exp); err != nil {
				krows.Close()
				return nil, err
			}
			keys = append(keys, kr)
		}
		krows.Close()
		if err := krows.Err(); err != nil {
			return nil, err
		}
		for _, kr := range keys {
			exp := kr.exp
			if exp == 0 {
				exp = sessExp[kr.session]
			}
			changes = append(changes, protocol.Change{Op: protocol.OpRevoke, Key: kr.key, Exp: revocationExp(exp, now), Reason: reason})
		}
	}
	if err := tx.append(ctx, changes...); err != nil {
		return nil, err
	}
	return ids, nil
}

func (s *sqlStore) DeleteSession(ctx context.Context, id string, now time.Time) error {
	return s.revokeTx(ctx, "delete session", now, func(tx *logTx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = $1`, id).Scan(&exists); err != nil {
			return err
		}
		if _, err := s.endWhere(ctx, tx, "id = $1", []any{id}, protocol.ReasonManual, true); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM session_keys WHERE session_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, id)
		return err
	})
}

// EndIdle reads through session_seen: a session whose pending activity
// mark (not merged yet) is at or after idleBefore is not idle. The mark is
// read in the statement that ends the session, so a mark committed before
// it always saves the session.
func (s *sqlStore) EndIdle(ctx context.Context, idleBefore, now time.Time) ([]string, error) {
	return s.endBatch(ctx, "end idle", "last_active < $1 AND NOT EXISTS (SELECT 1 FROM session_seen x WHERE x.session_id = sessions.id AND x.at >= $1)",
		ms(idleBefore), protocol.ReasonIdle, now)
}

func (s *sqlStore) EndOld(ctx context.Context, loginBefore, now time.Time) ([]string, error) {
	return s.endBatch(ctx, "end old", "login_time < $1", ms(loginBefore), protocol.ReasonExpired, now)
}

// bulkChunk bounds one transaction of a sweep (sessions ended or purged):
// between two, a waiting revocation or login takes the writer.
const bulkChunk = 500

// endBatch ends the active sessions matching cond (on $1 = bound) in
// transactions of bulkChunk sessions at bulk priority. An idle sweep over a
// million sessions may end a hundred thousand at once; as one transaction
// it would hold SQLite's writer (or PostgreSQL's log lock) for its whole
// length.
func (s *sqlStore) endBatch(ctx context.Context, op, cond string, bound int64, reason string, now time.Time) ([]string, error) {
	var all []string
	for {
		var ended []string
		err := s.logWrite(ctx, prioBulk, op, now, func(tx *logTx) error {
			var err error
			ended, err = s.endWhere(ctx, tx, "id IN (SELECT id FROM sessions WHERE active AND "+cond+
				" LIMIT "+strconv.Itoa(bulkChunk)+")", []any{bound}, reason, false)
			return err
		})
		if len(ended) > 0 {
			s.signal.poke() // bulk commits do not poke by themselves (SQLite)
		}
		if err != nil {
			return all, err
		}
		all = append(all, ended...)
		if len(ended) < bulkChunk {
			return all, nil
		}
	}
}

func (s *sqlStore) Purge(ctx context.Context, endedBefore time.Time) (int, error) {
	b := ms(endedBefore)
	total, err := s.deleteEndedWhere(ctx, "purge", "logout_time < $1", b)
	if err != nil {
		return total, err
	}
	err = s.writeTxPrio(ctx, prioBulk, "purge", func(tx *sql.Tx) error {
		if err := purgeAlerts(ctx, tx, b); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM failed_logins WHERE at < $1`, b)
		return err
	})
	return total, err
}

// DeleteEnded deletes every ended session and its keys, and nothing else
// (the admin API's clean-inactive).
func (s *sqlStore) DeleteEnded(ctx context.Context) (int, error) {
	return s.deleteEndedWhere(ctx, "delete ended sessions", "TRUE")
}

// deleteEndedWhere deletes the ended sessions matching cond (on args) and
// their keys in transactions of bulkChunk sessions at bulk priority.
func (s *sqlStore) deleteEndedWhere(ctx context.Context, op, cond string, args ...any) (int, error) {
	total := 0
	for {
		var n int64
		err := s.writeTxPrio(ctx, prioBulk, op, func(tx *sql.Tx) error {
			pick := `SELECT id FROM sessions WHERE NOT active AND ` + cond + ` LIMIT ` + strconv.Itoa(bulkChunk)
			rows, err := tx.QueryContext(ctx, pick, args...)
			if err != nil {
				return err
			}
			var ids []any
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil || len(ids) == 0 {
				return err
			}
			in := numbered(1, len(ids))
			if _, err := tx.ExecContext(ctx, `DELETE FROM session_keys WHERE session_id IN (`+in+`)`, ids...); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id IN (`+in+`)`, ids...)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < bulkChunk {
			return total, nil
		}
	}
}

// overlaySeen moves the LastActive of the active sessions among ss to
// their pending activity mark (session_seen) when it is later: a list
// page is read, in its order, by the merged column, and shows the latest
// mark. One statement whatever the page's length.
func (s *sqlStore) overlaySeen(ctx context.Context, ss []Session) error {
	at := make(map[string]int, len(ss))
	ids := make([]string, 0, len(ss))
	for i := range ss {
		if ss[i].Active {
			at[ss[i].ID] = i
			ids = append(ids, ss[i].ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var (
		rows *sql.Rows
		err  error
	)
	if s.d.name() == "postgres" {
		rows, err = s.read(ctx, `SELECT session_id, at FROM session_seen WHERE session_id = ANY($1::text[])`, ids)
	} else {
		list, _ := json.Marshal(ids)
		rows, err = s.read(ctx, `SELECT session_id, at FROM session_seen WHERE session_id IN (SELECT value FROM json_each(?))`, string(list))
	}
	if err != nil {
		return s.wrap("read activity marks", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return s.wrap("read activity marks", err)
		}
		if i, ok := at[id]; ok {
			if t := fromMS(v); t.After(ss[i].LastActive) {
				ss[i].LastActive = t
			}
		}
	}
	return s.wrap("read activity marks", rows.Err())
}
