package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// sqlStore implements Store over database/sql for both dialects. On SQLite
// w is a single-connection writer pool and r a read-only pool; on
// PostgreSQL both are the same pool.
type sqlStore struct {
	w, r          *sql.DB
	d             dialect
	log           *slog.Logger
	epoch         string
	latestVersion int
	feed          feedCache
	stmts         stmtCache
	gate          *writeGate // SQLite only: orders writers by priority
	signal        feedSignal // wakes long-poll waiters when the log moves
	trgm          bool       // PostgreSQL: the pg_trgm search index exists
}

// Dialect reports "sqlite" or "postgres".
func (s *sqlStore) Dialect() string { return s.d.name() }

// wrap classifies a database error: ErrNotFound for no rows, ErrConflict for
// unique violations, ErrUnavailable when the database is down, locked or
// closed; anything else keeps its message.
func (s *sqlStore) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	case s.d.isConflict(err):
		return fmt.Errorf("%s: %w: %v", op, ErrConflict, err)
	case s.d.isUnavailable(err):
		return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// NewSessionID returns a fresh "sess_…" id (128 random bits).
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "sess_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// numbered returns "$from, …, $from+n-1".
func numbered(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$")
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// placeholders returns the placeholders of arguments from..from+n-1. On
// SQLite they are positional "?", so they must follow every earlier
// argument of the statement in order.
func (s *sqlStore) placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.d.bindvar(from + i))
	}
	return b.String()
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return s.wrap("ping", err)
	}
	if s.w != s.r {
		if err := s.w.PingContext(ctx); err != nil {
			return s.wrap("ping writer", err)
		}
	}
	return s.checkSchema(ctx)
}

func (s *sqlStore) Close() error {
	s.signal.close()
	s.stmts.close()
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

func (s *sqlStore) Epoch(ctx context.Context) (string, error) {
	return s.epoch, nil
}

// writeTx runs fn in a write transaction of normal priority.
func (s *sqlStore) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.writeTxPrio(ctx, prioNormal, op, fn)
}

// revokeTx runs fn, which ends sessions or appends to the revocation log,
// in a write transaction that goes before every waiting login or bulk write.
func (s *sqlStore) revokeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.writeTxPrio(ctx, prioRevoke, op, fn)
}

// writeTxPrio runs fn in a write transaction. On SQLite the write
// connection is taken through the priority gate. Any committed write other
// than bulk work may have appended to the revocation log, so the feed's
// waiters are told to look (PostgreSQL tells them through NOTIFY instead).
func (s *sqlStore) writeTxPrio(ctx context.Context, p priority, op string, fn func(tx *sql.Tx) error) error {
	if s.gate != nil {
		if err := s.gate.acquire(ctx, p); err != nil {
			return s.wrap(op, err)
		}
		defer s.gate.release()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(op+": commit", err)
	}
	if p != prioBulk && s.gate != nil {
		s.signal.poke()
	}
	return nil
}

const sessionCols = `id, user_id, ip, user_agent, login_time, last_active, logout_time, active,
	terminated_manually, termination_reason, device_type, browser_name, os_name, geo,
	security_score, score_reasons, expires_at, route, locale, user_document_id, username, user_email, user_lookup`

type rowScanner interface{ Scan(dest ...any) error }

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
		var g GeoLocation
		if json.Unmarshal([]byte(geo.String), &g) == nil {
			ss.Geo = &g
		}
	}
	if reasons != "" && reasons != "[]" {
		_ = json.Unmarshal([]byte(reasons), &ss.ScoreReasons)
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
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, ip, user_agent, login_time, last_active,
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

func (s *sqlStore) GetSession(ctx context.Context, id string) (*Session, error) {
	ss, err := scanSession(s.readRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
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
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	q := `SELECT ` + sessionCols + ` FROM sessions WHERE id IN
		(SELECT session_id FROM session_keys WHERE key IN (` + s.placeholders(1, len(keys)) + `))
		ORDER BY active DESC, login_time DESC LIMIT 1`
	ss, err := scanSession(s.readRow(ctx, q, args...))
	if err != nil {
		return nil, s.wrap("find session by keys", err)
	}
	return ss, nil
}

func nonEmpty(keys []string) []string {
	out := keys[:0:0]
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if k == "" {
			continue
		}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, k)
	}
	return out
}

var sortColumns = map[string]string{
	"":              "login_time",
	"lastActive":    "last_active",
	"loginTime":     "login_time",
	"logoutTime":    "logout_time",
	"userId":        "user_id",
	"ip":            "ip",
	"ipAddress":     "ip",
	"securityScore": "security_score",
}

// SortFields lists the sort names ListSessions accepts.
func SortFields() []string {
	out := make([]string, 0, len(sortColumns))
	for k := range sortColumns {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
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
// nothing is rotated or attached. It is an extension to the Store interface.
func (s *sqlStore) CheckRefresh(ctx context.Context, presented []string, now time.Time) (RefreshOutcome, error) {
	return s.refresh(ctx, presented, nil, false, now)
}

func (s *sqlStore) refresh(ctx context.Context, presented []string, newKeys []SessionKey, rotate bool, now time.Time) (RefreshOutcome, error) {
	presented = nonEmpty(presented)
	if len(presented) == 0 {
		return RefreshOutcome{}, fmt.Errorf("refresh: no keys presented: %w", ErrNotFound)
	}
	var out RefreshOutcome
	err := s.writeTx(ctx, "refresh", func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		args := make([]any, len(presented))
		for i, k := range presented {
			args[i] = k
		}
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
				if _, err := s.endWhere(ctx, tx, "id = $1", []any{sessionID}, protocol.ReasonReuse, false, now); err != nil {
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
			if err := addKeys(ctx, tx, sessionID, newKeys); err != nil {
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
		for _, id := range f.SessionIDs {
			args = append(args, id)
		}
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
	err := s.revokeTx(ctx, "end sessions", func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		var err error
		ended, err = s.endWhere(ctx, tx, strings.Join(where, " AND "), args, reason, manual, now)
		return err
	})
	return ended, err
}

// endWhere ends the active sessions matching cond (whose placeholders start
// at $1) and logs a revoke change for each of their keys. The caller holds
// the log lock.
func (s *sqlStore) endWhere(ctx context.Context, tx *sql.Tx, cond string, args []any, reason string, manual bool, now time.Time) ([]string, error) {
	n := len(args)
	q := `UPDATE sessions SET active = FALSE, logout_time = $` + strconv.Itoa(n+1) +
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
	ap, err := newAppender(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	defer ap.close()
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		pargs := make([]any, len(part))
		for j, id := range part {
			pargs[j] = id
		}
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
			if err := ap.append(ctx, protocol.Change{Op: protocol.OpRevoke, Key: kr.key, Exp: revocationExp(exp, now), Reason: reason}); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// revocationExp turns a token expiry in Unix milliseconds (0 = unknown)
// into the Unix-seconds expiry of its revocation entry.
func revocationExp(expMS int64, now time.Time) int64 {
	if expMS <= 0 {
		return now.Add(DefaultRevocationTTL).Unix()
	}
	return (expMS + 999) / 1000
}

// appender writes revocation log entries inside a transaction.
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
type appender struct {
	supersede, insert *sql.Stmt
	now               time.Time
}

func newAppender(ctx context.Context, tx *sql.Tx, now time.Time) (*appender, error) {
	sup, err := tx.PrepareContext(ctx, `UPDATE revocation_log SET latest = FALSE WHERE subject = $1 AND latest`)
	if err != nil {
		return nil, err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO revocation_log (op, subject, key, user_id, exp, at, reason, latest, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8)`)
	if err != nil {
		sup.Close()
		return nil, err
	}
	return &appender{supersede: sup, insert: ins, now: now}, nil
}

func (a *appender) close() {
	a.supersede.Close()
	a.insert.Close()
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

func (a *appender) append(ctx context.Context, c protocol.Change) error {
	subject := subjectOf(c)
	if _, err := a.supersede.ExecContext(ctx, subject); err != nil {
		return err
	}
	_, err := a.insert.ExecContext(ctx, c.Op, subject, c.Key, c.User, c.Exp, c.At, c.Reason, ms(a.now))
	return err
}

func (s *sqlStore) DeleteSession(ctx context.Context, id string, now time.Time) error {
	return s.revokeTx(ctx, "delete session", func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = $1`, id).Scan(&exists); err != nil {
			return err
		}
		if _, err := s.endWhere(ctx, tx, "id = $1", []any{id}, protocol.ReasonManual, true, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM session_keys WHERE session_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, id)
		return err
	})
}

func (s *sqlStore) RecordActivity(ctx context.Context, marks []ActivityMark) (int, error) {
	if len(marks) == 0 {
		return 0, nil
	}
	// Coalesce per key: only the latest mark matters.
	latest := make(map[string]int64, len(marks))
	order := make([]string, 0, len(marks))
	for _, m := range marks {
		if m.Key == "" || m.At.IsZero() {
			continue
		}
		v := ms(m.At)
		if old, ok := latest[m.Key]; !ok {
			order = append(order, m.Key)
			latest[m.Key] = v
		} else if v > old {
			latest[m.Key] = v
		}
	}
	// A fixed order keeps two replicas' flushes from deadlocking on
	// PostgreSQL and walks SQLite's key index in order.
	sort.Strings(order)
	// Short transactions at bulk priority: a revocation waits for one
	// statement at most, never for the whole batch (a flush of 100k marks
	// is many transactions). On SQLite a transaction also ends early, after
	// any statement, when a more urgent writer is waiting at the gate.
	updated := 0
	for i := 0; i < len(order); {
		var n, done int
		err := s.writeTxPrio(ctx, prioBulk, "record activity", func(tx *sql.Tx) error {
			var err error
			if s.d.name() == "postgres" {
				part := order[i:min(i+activityChunk, len(order))]
				done = len(part)
				n, err = activityPostgres(ctx, tx, part, atsOf(latest, part))
			} else {
				n, done, err = s.activitySQLite(ctx, tx, order[i:], latest)
			}
			return err
		})
		if err != nil {
			return updated, err
		}
		updated += n
		i += done
	}
	return updated, nil
}

func atsOf(latest map[string]int64, keys []string) []int64 {
	ats := make([]int64, len(keys))
	for j, k := range keys {
		ats[j] = latest[k]
	}
	return ats
}

const (
	// activityChunk bounds one activity transaction (keys).
	activityChunk = 1000
	// activityStmtRows is the rows of one SQLite activity statement: a
	// revocation waiting at the gate waits for at most one of these.
	activityStmtRows = 100
)

// activitySQLite moves sessions forward in statements of activityStmtRows
// keys, up to activityChunk keys, and stops early when a more urgent writer
// waits. Each statement joins a VALUES list to the key index and the
// sessions' primary key (several keys of one session collapse to their
// latest mark). It returns the sessions updated and the keys done.
func (s *sqlStore) activitySQLite(ctx context.Context, tx *sql.Tx, keys []string, latest map[string]int64) (updated, done int, err error) {
	stmtFor := func(n int) string {
		return `UPDATE sessions SET last_active = v.at
			FROM (SELECT k.session_id AS sid, max(m.column2) AS at
				FROM (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + `) AS m
				JOIN session_keys k ON k.key = m.column1 GROUP BY k.session_id) AS v
			WHERE sessions.id = v.sid AND sessions.active AND sessions.last_active < v.at`
	}
	var full *sql.Stmt
	defer func() {
		if full != nil {
			_ = full.Close()
		}
	}()
	args := make([]any, 0, 2*activityStmtRows)
	for done < len(keys) && done < activityChunk {
		part := keys[done:min(done+activityStmtRows, len(keys))]
		args = args[:0]
		for _, k := range part {
			args = append(args, k, latest[k])
		}
		var res sql.Result
		if len(part) == activityStmtRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, stmtFor(activityStmtRows)); err != nil {
					return updated, done, err
				}
			}
			res, err = full.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, stmtFor(len(part)), args...)
		}
		if err != nil {
			return updated, done, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return updated, done, err
		}
		updated += int(n)
		done += len(part)
		if s.gate != nil && s.gate.waiting(prioNormal) > 0 {
			break
		}
	}
	return updated, done, nil
}

// activityPostgres moves a chunk forward with one statement over two
// arrays (one round trip, one plan whatever the chunk size). Several keys
// of one session collapse to their latest mark first. lock_timeout keeps
// a flush from holding rows while it waits behind a termination: it gives
// up (the marks are retried) instead. Its commit does not wait for the WAL
// flush (synchronous_commit off): a crash may lose the last marks, which
// the design allows, and revocations do not queue behind its fsyncs.
func activityPostgres(ctx context.Context, tx *sql.Tx, keys []string, ats []int64) (int, error) {
	// A chunk touches a few thousand index entries of a table of millions:
	// the planner's costs still favour hashing whole tables, so for this
	// transaction only it is told to use the indexes.
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', '200ms', true),
		set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
		set_config('enable_seqscan', 'off', true), set_config('synchronous_commit', 'off', true)`); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE sessions SET last_active = v.at
		FROM (SELECT k.session_id, max(m.at) AS at
			FROM unnest($1::text[], $2::bigint[]) AS m(key, at)
			JOIN session_keys k ON k.key = m.key
			GROUP BY k.session_id) AS v
		WHERE sessions.id = v.session_id AND sessions.active AND sessions.last_active < v.at`, keys, ats)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (s *sqlStore) RevokeKeys(ctx context.Context, keys []string, reason string, exp time.Time, now time.Time) error {
	keys = nonEmpty(keys)
	if len(keys) == 0 {
		return nil
	}
	e := exp.Unix()
	if exp.IsZero() {
		e = now.Add(DefaultRevocationTTL).Unix()
	}
	return s.revokeTx(ctx, "revoke keys", func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		ap, err := newAppender(ctx, tx, now)
		if err != nil {
			return err
		}
		defer ap.close()
		for _, k := range keys {
			if err := ap.append(ctx, protocol.Change{Op: protocol.OpRevoke, Key: k, Exp: e, Reason: reason}); err != nil {
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
	return s.revokeTx(ctx, "set blocked", func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_blocks (user_id, blocked, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET blocked = excluded.blocked, updated_at = excluded.updated_at`,
			userID, blocked, ms(now)); err != nil {
			return err
		}
		op := protocol.OpUnblock
		if blocked {
			op = protocol.OpBlock
			if _, err := s.endWhere(ctx, tx, "user_id = $1", []any{userID}, protocol.ReasonBlocked, true, now); err != nil {
				return err
			}
		}
		ap, err := newAppender(ctx, tx, now)
		if err != nil {
			return err
		}
		defer ap.close()
		reason := ""
		if blocked {
			reason = protocol.ReasonBlocked
		}
		return ap.append(ctx, protocol.Change{Op: op, User: userID, Reason: reason})
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
	e := exp.Unix()
	if exp.IsZero() {
		e = now.Add(DefaultRevocationTTL).Unix()
	}
	return s.revokeTx(ctx, "set not-before", func(tx *sql.Tx) error {
		if err := s.d.lockLog(ctx, tx); err != nil {
			return err
		}
		ap, err := newAppender(ctx, tx, now)
		if err != nil {
			return err
		}
		defer ap.close()
		return ap.append(ctx, protocol.Change{Op: protocol.OpNotBefore, User: userID, At: at.Unix(), Exp: e, Reason: protocol.ReasonNotBefore})
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

func (s *sqlStore) EndIdle(ctx context.Context, idleBefore, now time.Time) ([]string, error) {
	return s.endBatch(ctx, "end idle", "last_active < $1", ms(idleBefore), protocol.ReasonIdle, now)
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
		err := s.writeTxPrio(ctx, prioBulk, op, func(tx *sql.Tx) error {
			if err := s.d.lockLog(ctx, tx); err != nil {
				return err
			}
			var err error
			ended, err = s.endWhere(ctx, tx, "id IN (SELECT id FROM sessions WHERE active AND "+cond+
				" LIMIT "+strconv.Itoa(bulkChunk)+")", []any{bound}, reason, false, now)
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
	total := 0
	for {
		var n int64
		err := s.writeTxPrio(ctx, prioBulk, "purge", func(tx *sql.Tx) error {
			pick := `SELECT id FROM sessions WHERE NOT active AND logout_time < $1 LIMIT ` + strconv.Itoa(bulkChunk)
			rows, err := tx.QueryContext(ctx, pick, b)
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
			break
		}
	}
	err := s.writeTxPrio(ctx, prioBulk, "purge", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE sent_at IS NOT NULL AND sent_at < $1`, b); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM failed_logins WHERE at < $1`, b)
		return err
	})
	return total, err
}

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
	rows, err := s.read(ctx, `SELECT `+adminCols+` FROM admin_tokens ORDER BY id`)
	if err != nil {
		return nil, s.wrap("list admin tokens", err)
	}
	defer rows.Close()
	var out []AdminToken
	for rows.Next() {
		t, err := scanAdmin(rows)
		if err != nil {
			return nil, s.wrap("scan admin token", err)
		}
		out = append(out, t)
	}
	return out, s.wrap("list admin tokens", rows.Err())
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
		defer rows.Close()
		for rows.Next() {
			a, err := scanAlert(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
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

func (s *sqlStore) MarkAlertSent(ctx context.Context, id int64, now time.Time) error {
	return s.execOne(ctx, "mark alert sent", `UPDATE alerts SET sent_at = $1, lease_owner = '', lease_until = 0 WHERE id = $2`, ms(now), id)
}

func (s *sqlStore) MarkAlertFailed(ctx context.Context, id int64, errMsg string, next time.Time, dead bool) error {
	return s.execOne(ctx, "mark alert failed", `UPDATE alerts SET attempts = attempts + 1, last_error = $1,
		next_attempt = $2, dead = $3, lease_owner = '', lease_until = 0 WHERE id = $4`, errMsg, ms(next), dead, id)
}

func (s *sqlStore) RetryAlert(ctx context.Context, id int64, now time.Time) error {
	return s.execOne(ctx, "retry alert", `UPDATE alerts SET dead = FALSE, next_attempt = $1, lease_owner = '', lease_until = 0
		WHERE id = $2 AND sent_at IS NULL`, ms(now), id)
}

// execOne runs a statement that must change exactly one row (ErrNotFound otherwise).
func (s *sqlStore) execOne(ctx context.Context, op, q string, args ...any) error {
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
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
	rows, err := s.read(ctx, q, limit)
	if err != nil {
		return nil, s.wrap("list alerts", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, s.wrap("scan alert", err)
		}
		out = append(out, a)
	}
	return out, s.wrap("list alerts", rows.Err())
}

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
