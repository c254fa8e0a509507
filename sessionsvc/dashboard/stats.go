package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// statsDB is a read-only connection for the figures the Store interface
// has no call for (counts by hour, top countries, sessions started or
// ended since a time). It reads the store's schema (tables sessions,
// user_blocks, failed_logins, login_refusals) and never writes; every query is served by
// one of the store's indexes.
type statsDB struct {
	db   *sql.DB
	like string // case-insensitive LIKE of the dialect
	// tiebreak orders rows with equal sort values: SQLite's rowid is in
	// every index, so deep pages skip rows without reading the table.
	tiebreak string
	sqlite   bool

	// selective remembers, for a few seconds, whether the search index
	// narrows a term (one table request asks up to three times, and paging
	// through results asks again).
	selMu     sync.Mutex
	selective map[string]selectivity
}

type selectivity struct {
	indexed bool
	at      time.Time
}

func openStats(ctx context.Context, databaseURL string) (*statsDB, error) {
	var db *sql.DB
	like, tiebreak := "LIKE", "rowid"
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		rest := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//")
		p, _, _ := strings.Cut(rest, "?")
		if p == "" || strings.Contains(p, ":memory:") {
			return nil, errors.New("in-memory SQLite cannot be shared")
		}
		var err error
		db, err = sql.Open("sqlite", "file:"+p+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
		if err != nil {
			return nil, fmt.Errorf("dashboard stats: open sqlite: %w", err)
		}
		db.SetMaxOpenConns(2)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		cfg, err := pgx.ParseConfig(databaseURL)
		if err != nil {
			return nil, fmt.Errorf("dashboard stats: parse postgres url: %w", err)
		}
		db = stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(2)
		like, tiebreak = "ILIKE", "id"
	default:
		return nil, fmt.Errorf("dashboard stats: unsupported database url")
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(pctx, `SELECT COUNT(*) FROM user_blocks`).Scan(&n); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("dashboard stats: %w", err)
	}
	return &statsDB{db: db, like: like, tiebreak: tiebreak, sqlite: like == "LIKE"}, nil
}

func (s *statsDB) close() error { return s.db.Close() }

func (s *statsDB) count(ctx context.Context, q string, args ...any) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("dashboard stats: %w", err)
	}
	return n, nil
}

// queryAll runs q and reads every row with scan; what prefixes errors.
func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(*sql.Rows, *T) error, q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// buckets counts rows into n buckets: q selects (bucket, count) pairs;
// buckets outside 0..n-1 are dropped.
func (s *statsDB) buckets(ctx context.Context, what string, n int, q string, args ...any) ([]int, error) {
	type bucketCount struct {
		b int64
		c int
	}
	pairs, err := queryAll(ctx, s.db, what, func(r *sql.Rows, v *bucketCount) error { return r.Scan(&v.b, &v.c) }, q, args...)
	if err != nil {
		return nil, err
	}
	out := make([]int, n)
	for _, p := range pairs {
		if p.b >= 0 && p.b < int64(n) {
			out[p.b] += p.c
		}
	}
	return out, nil
}

func scanCount(r *sql.Rows, c *countItem) error { return r.Scan(&c.Name, &c.Count) }

func (s *statsDB) top(ctx context.Context, col string, since int64, n int) ([]countItem, error) {
	return queryAll(ctx, s.db, "dashboard stats", scanCount, `SELECT `+col+`, COUNT(*) FROM sessions WHERE login_time >= $1 GROUP BY `+col+
		` ORDER BY COUNT(*) DESC, `+col+` LIMIT `+fmt.Sprint(n), since)
}

// change is a session that started or ended, for live events.
type change struct {
	Type   string `json:"type"` // started, ended
	ID     string `json:"sessionId"`
	UserID string `json:"userId"`
	Reason string `json:"reason,omitempty"`
	At     int64  `json:"at"` // Unix ms
}

func (s *statsDB) started(ctx context.Context, since int64) ([]change, error) {
	return queryAll(ctx, s.db, "dashboard events", func(r *sql.Rows, c *change) error {
		c.Type = "started"
		return r.Scan(&c.ID, &c.UserID, &c.At)
	}, `SELECT id, user_id, login_time FROM sessions WHERE login_time > $1 ORDER BY login_time LIMIT 500`, since)
}

func (s *statsDB) ended(ctx context.Context, since int64) ([]change, error) {
	return queryAll(ctx, s.db, "dashboard events", func(r *sql.Rows, c *change) error {
		c.Type = "ended"
		return r.Scan(&c.ID, &c.UserID, &c.Reason, &c.At)
	}, `SELECT id, user_id, termination_reason, logout_time FROM sessions
		WHERE NOT active AND logout_time > $1 ORDER BY logout_time LIMIT 500`, since)
}

// Overview is the overview page's figures.
type Overview struct {
	OnlineNow         int         `json:"onlineNow"` // seen in the last 5 minutes
	Active15          int         `json:"active15"`
	Active30          int         `json:"active30"`
	ActiveSessions    int         `json:"activeSessions"` // not ended, idle or not
	TotalSessions     int         `json:"totalSessions"`
	BlockedUsers      *int        `json:"blockedUsers"` // nil when unknown
	InactivityMinutes int         `json:"inactivityMinutes"`
	Series            *series     `json:"series"` // nil when unknown
	TopCountries      []countItem `json:"topCountries"`
	TopDevices        []countItem `json:"topDevices"`
	TopBrowsers       []countItem `json:"topBrowsers"`
	TopSince          time.Time   `json:"topSince"`
	GeneratedAt       time.Time   `json:"generatedAt"`
	Partial           bool        `json:"partial"` // figures that need SQL access are missing
}

type series struct {
	Start         time.Time `json:"start"`
	BucketMinutes int       `json:"bucketMinutes"`
	Logins        []int     `json:"logins"`
	Refusals      []int     `json:"refusals"` // failed logins (per client address)
	Ended         []int     `json:"ended"`
}

// overviewCache keeps the figures for a few seconds: every open overview
// page polls, and the totals scan an index.
type overviewCache struct {
	mu         sync.Mutex
	at         time.Time
	val        *Overview
	refreshing bool
}

// Figures younger than overviewTTL are served as they are; older ones are
// served while a refresh runs, up to overviewMaxStale, after which the
// request waits for fresh ones.
const (
	overviewTTL      = 5 * time.Second
	overviewMaxStale = time.Minute
)

func (d *Dashboard) computeOverview(ctx context.Context) (*Overview, error) {
	now := d.now().UTC()
	o := &Overview{GeneratedAt: now, InactivityMinutes: int(d.cfg.Settings(ctx).InactivityDuration() / time.Minute)}
	countSince := func(dur time.Duration) (int, error) {
		p, err := d.st.ListSessions(ctx, store.SessionQuery{Status: store.StatusActive, IdleBefore: now.Add(-dur), Limit: 1, ExactTotal: true})
		return p.Total, err
	}
	var err error
	if o.OnlineNow, err = countSince(5 * time.Minute); err != nil {
		return nil, err
	}
	if o.Active15, err = countSince(15 * time.Minute); err != nil {
		return nil, err
	}
	if o.Active30, err = countSince(30 * time.Minute); err != nil {
		return nil, err
	}
	if d.stats == nil {
		o.Partial = true
		p, err := d.st.ListSessions(ctx, store.SessionQuery{ActiveOnly: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		o.ActiveSessions = p.Total
		if p, err = d.st.ListSessions(ctx, store.SessionQuery{Limit: 1}); err != nil {
			return nil, err
		}
		o.TotalSessions = p.Total
		return o, nil
	}
	s := d.stats
	if o.ActiveSessions, err = s.count(ctx, `SELECT COUNT(*) FROM sessions WHERE active`); err != nil {
		return nil, err
	}
	if o.TotalSessions, err = s.count(ctx, `SELECT COUNT(*) FROM sessions`); err != nil {
		return nil, err
	}
	b, err := s.count(ctx, `SELECT COUNT(*) FROM user_blocks WHERE blocked`)
	if err != nil {
		return nil, err
	}
	o.BlockedUsers = &b
	const hours = 24
	start := now.Truncate(time.Hour).Add(-(hours - 1) * time.Hour)
	sm := start.UnixMilli()
	sr := &series{Start: start, BucketMinutes: 60}
	if sr.Logins, err = s.buckets(ctx, "dashboard stats", hours, `SELECT (login_time - $1) / 3600000, COUNT(*) FROM sessions WHERE login_time >= $1 GROUP BY 1`, sm); err != nil {
		return nil, err
	}
	if sr.Refusals, err = s.buckets(ctx, "dashboard stats", hours, `SELECT (at - $1) / 3600000, COUNT(*) FROM failed_logins WHERE at >= $1 AND scope LIKE 'ip:%' GROUP BY 1`, sm); err != nil {
		return nil, err
	}
	if sr.Ended, err = s.buckets(ctx, "dashboard stats", hours, `SELECT (logout_time - $1) / 3600000, COUNT(*) FROM sessions WHERE NOT active AND logout_time >= $1 GROUP BY 1`, sm); err != nil {
		return nil, err
	}
	o.Series = sr
	o.TopSince = now.Add(-24 * time.Hour)
	since := o.TopSince.UnixMilli()
	if o.TopCountries, err = s.top(ctx, "country", since, 6); err != nil {
		return nil, err
	}
	if o.TopDevices, err = s.top(ctx, "device_type", since, 6); err != nil {
		return nil, err
	}
	if o.TopBrowsers, err = s.top(ctx, "browser_name", since, 6); err != nil {
		return nil, err
	}
	return o, nil
}

// cachedOverview answers from the cache; a stale cache is answered at once
// and refreshed in the background (one refresh at a time), so only the
// first visit after a start waits for the figures.
func (d *Dashboard) cachedOverview(ctx context.Context, fresh bool) (*Overview, error) {
	c := &d.ov
	c.mu.Lock()
	val, at := c.val, c.at
	if val != nil && !fresh && d.now().Sub(at) < overviewMaxStale {
		if d.now().Sub(at) >= overviewTTL && !c.refreshing {
			c.refreshing = true
			go func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				o, err := d.computeOverview(rctx)
				c.mu.Lock()
				defer c.mu.Unlock()
				c.refreshing = false
				if err != nil {
					d.log.Warn("dashboard: refreshing overview figures failed", "err", err)
					return
				}
				c.val, c.at = o, d.now()
			}()
		}
		c.mu.Unlock()
		return val, nil
	}
	c.mu.Unlock()
	o, err := d.computeOverview(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.val, c.at = o, d.now()
	c.mu.Unlock()
	return o, nil
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, _ *session) {
	o, err := d.cachedOverview(r.Context(), r.URL.Query().Get("fresh") == "1")
	if err != nil {
		d.storeError(w, "overview figures", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": o})
}

// endedBy names the admin whose action ended a session at logoutTime
// (terminate, terminate-all or block, from the audit trail), "" when none
// is recorded. The time window keeps the lookup on the audit_events_at index.
func (s *statsDB) endedBy(ctx context.Context, sessionID, userID string, logoutTime time.Time) (string, error) {
	at := logoutTime.UnixMilli()
	var actor string
	err := s.db.QueryRowContext(ctx, `SELECT actor FROM audit_events WHERE at >= $1 AND at <= $2
		AND event IN ('session.terminated', 'user.terminated_all', 'user.blocked')
		AND ((subject_kind = 'session' AND subject = $3) OR (subject_kind = 'user' AND subject = $4))
		ORDER BY at DESC LIMIT 1`, at-5000, at+5000, sessionID, userID).Scan(&actor)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dashboard: who ended a session: %w", err)
	}
	return actor, nil
}
