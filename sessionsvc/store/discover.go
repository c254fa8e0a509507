package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// RouteDiscovered is the Route of a session registered from traffic (a token
// the proxy saw that no session knew: a login made while sessionsvc was
// down, a registration that timed out, a session older than the filter).
const RouteDiscovered = "discovered"

// Discovered reports whether the session was registered from traffic
// rather than at its login.
func (s Session) Discovered() bool { return s.Route == RouteDiscovered }

// Discovery is a token the proxy saw, as its activity report describes it.
type Discovery struct {
	UserID string
	// Keys are the token's keys; the first names the session (the one the
	// proxy reports activity under: sid: when the token has a session
	// claim, else its fp:).
	Keys      []SessionKey
	IP        string
	UserAgent string
	// FirstSeen is the login time recorded (the earliest the proxy saw it).
	FirstSeen                       time.Time
	DeviceType, BrowserName, OSName string
}

// maxDiscoveryKeys bounds the keys looked up in one DiscoverSessions call
// (PostgreSQL allows 65535 parameters per statement).
const maxDiscoveryKeys = 30000

// DiscoverSessions registers, as discovered sessions (Route
// RouteDiscovered), the tokens of ds that no session knows: none of their
// keys is attached to a session (active or ended), revoked in the log, or
// held by a blocked user. A token two replicas discover at once is
// registered once (its first key is inserted with ON CONFLICT DO NOTHING
// before the session). Returns the ids of the sessions created. This path
// is separate from RecordActivity: known sessions never reach it.
func (s *sqlStore) DiscoverSessions(ctx context.Context, ds []Discovery, now time.Time) ([]string, error) {
	var all []any
	users := map[string]bool{}
	for _, d := range ds {
		if d.UserID == "" || len(d.Keys) == 0 || d.Keys[0].Key == "" {
			continue
		}
		for _, k := range d.Keys {
			if k.Key != "" {
				all = append(all, k.Key)
			}
		}
		users[d.UserID] = true
	}
	if len(all) == 0 {
		return nil, nil
	}
	if len(all) > maxDiscoveryKeys {
		return nil, fmt.Errorf("discover sessions: %d keys in one call (at most %d)", len(all), maxDiscoveryKeys)
	}
	// The common case (every token known) costs one read on the read
	// pool and no write transaction.
	seen, err := knownKeys(ctx, s.r, all)
	if err != nil {
		return nil, s.wrap("discover sessions", err)
	}
	var unknown []Discovery
	all = all[:0]
	for _, d := range ds {
		if d.freshIn(seen) {
			unknown = append(unknown, d)
			for _, k := range d.Keys {
				if k.Key != "" {
					all = append(all, k.Key)
				}
			}
		}
	}
	if len(unknown) == 0 {
		return nil, nil
	}
	ds = unknown
	var created []string
	err = s.writeTx(ctx, "discover sessions", func(tx *sql.Tx) error {
		created = created[:0]
		seen, err := knownKeys(ctx, tx, all)
		if err != nil {
			return err
		}
		blocked, err := blockedUsers(ctx, tx, users)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if blocked[d.UserID] || !d.freshIn(seen) {
				continue
			}
			id, ok, err := discoverOne(ctx, tx, d, now)
			if err != nil {
				return err
			}
			if ok {
				created = append(created, id)
				for _, k := range d.Keys {
					seen[k.Key] = true // a token listed twice in one batch
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// freshIn reports whether d can make a session: it names a user and a
// first key, and none of its keys is in seen.
func (d Discovery) freshIn(seen map[string]bool) bool {
	if d.UserID == "" || len(d.Keys) == 0 || d.Keys[0].Key == "" {
		return false
	}
	for _, k := range d.Keys {
		if seen[k.Key] {
			return false
		}
	}
	return true
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// knownKeys returns which of keys name a session or are revoked in the log
// (the log is only asked about keys no session holds: in the common case,
// every key known, one indexed lookup).
func knownKeys(ctx context.Context, tx queryer, keys []any) (map[string]bool, error) {
	seen := make(map[string]bool, len(keys))
	if err := collect(ctx, tx, seen, `SELECT key FROM session_keys WHERE key IN (`+numbered(1, len(keys))+`)`, keys); err != nil {
		return nil, err
	}
	var rest []any
	for _, k := range keys {
		if !seen[k.(string)] {
			rest = append(rest, k)
		}
	}
	if len(rest) == 0 {
		return seen, nil
	}
	q := `SELECT subject FROM revocation_log WHERE latest AND op = '` + string(protocol.OpRevoke) +
		`' AND subject IN (` + numbered(1, len(rest)) + `)`
	if err := collect(ctx, tx, seen, q, rest); err != nil {
		return nil, err
	}
	return seen, nil
}

// collect adds the strings q selects to seen.
func collect(ctx context.Context, tx queryer, seen map[string]bool, q string, args []any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		seen[k] = true
	}
	return rows.Err()
}

func blockedUsers(ctx context.Context, tx *sql.Tx, users map[string]bool) (map[string]bool, error) {
	args := make([]any, 0, len(users))
	for u := range users {
		args = append(args, u)
	}
	rows, err := tx.QueryContext(ctx, `SELECT user_id FROM user_blocks WHERE blocked AND user_id IN (`+numbered(1, len(args))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out[u] = true
	}
	return out, rows.Err()
}

// discoverOne claims d's first key, then stores the session and its other
// keys. ok is false when another writer claimed the key first.
func discoverOne(ctx context.Context, tx *sql.Tx, d Discovery, now time.Time) (id string, ok bool, err error) {
	id = NewSessionID()
	first := now
	if !d.FirstSeen.IsZero() && d.FirstSeen.Before(now) {
		first = d.FirstSeen
	}
	var exp time.Time
	for i, k := range d.Keys {
		if k.Key == "" {
			continue
		}
		kind := k.Kind
		if kind == "" {
			kind = KeyAccess
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO session_keys (key, session_id, kind, expires_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING`, k.Key, id, string(kind), ms(k.ExpiresAt))
		if err != nil {
			return "", false, err
		}
		if i == 0 {
			if n, err := res.RowsAffected(); err != nil {
				return "", false, err
			} else if n == 0 {
				return "", false, nil
			}
		}
		if k.ExpiresAt.After(exp) {
			exp = k.ExpiresAt
		}
	}
	device := d.DeviceType
	if device == "" {
		device = "unknown"
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, ip, user_agent, login_time, last_active,
		active, terminated_manually, termination_reason, device_type, browser_name, os_name, geo, country,
		security_score, score_reasons, expires_at, route, locale)
		VALUES ($1, $2, $3, $4, $5, $6, TRUE, FALSE, '', $7, $8, $9, NULL, '', 100, '[]', $10, $11, '')`,
		id, d.UserID, d.IP, d.UserAgent, ms(first), ms(first), device, d.BrowserName, d.OSName, ms(exp), RouteDiscovered)
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}
