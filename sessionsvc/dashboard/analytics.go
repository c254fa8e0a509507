package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// Analytics is the analytics page's figures for one time range. Every
// figure is one aggregate query over an index range (login_time,
// logout_time, failed_logins (scope, at), revocation_log); active sessions
// over time are derived from the open sessions now and the logins and ends
// per bucket, so no query scans the whole table.
type Analytics struct {
	From          time.Time   `json:"from"`
	To            time.Time   `json:"to"`
	BucketMinutes int         `json:"bucketMinutes"`
	Logins        []int       `json:"logins"`
	Ended         []int       `json:"ended"`
	Refusals      []int       `json:"refusals"`
	Active        []int       `json:"active"`    // open sessions at the end of each bucket
	PeakHours     []int       `json:"peakHours"` // logins per hour of day, UTC
	TotalLogins   int         `json:"totalLogins"`
	TotalRefusals int         `json:"totalRefusals"`
	UniqueUsers   int         `json:"uniqueUsers"`
	UniqueIPs     int         `json:"uniqueIps"`
	RefusalsBy    []countItem `json:"refusalsByReason"` // credentials, lockout, blocked, policy
	Devices       []countItem `json:"devices"`
	Browsers      []countItem `json:"browsers"`
	OS            []countItem `json:"os"`
	Countries     []country   `json:"countries"`
	Risky         []risky     `json:"risky"`
	RiskyCount    int         `json:"riskyCount"`
	GeneratedAt   time.Time   `json:"generatedAt"`
}

type country struct {
	Code  string `json:"code"` // ISO 3166-1 alpha-2, "" when unknown
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type risky struct {
	SessionID string       `json:"sessionId"`
	UserID    string       `json:"userId"`
	IP        string       `json:"ipAddress"`
	Country   string       `json:"country"`
	Score     int          `json:"securityScore"`
	Reasons   []reasonCode `json:"reasons"`
	LoginTime time.Time    `json:"loginTime"`
}

// riskyBelow: logins scoring below this are listed as risky (the score
// badge's "warn" threshold).
const riskyBelow = 70

// analyticsRange reads range=24h|7d|30d|custom (from, to: RFC 3339 or
// YYYY-MM-DD) into a window and a bucket size with at most ~60 buckets.
func analyticsRange(q map[string][]string, now time.Time) (from, to time.Time, bucket time.Duration, err error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	to = now.Truncate(time.Hour).Add(time.Hour)
	switch get("range") {
	case "", "24h":
		return to.Add(-24 * time.Hour), to, time.Hour, nil
	case "7d":
		return to.Add(-7 * 24 * time.Hour), to, 6 * time.Hour, nil
	case "30d":
		to = now.Truncate(24 * time.Hour).Add(24 * time.Hour)
		return to.Add(-30 * 24 * time.Hour), to, 24 * time.Hour, nil
	case "custom":
		parse := func(s string, end bool) (time.Time, error) {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				return t.UTC(), nil
			}
			t, err := time.Parse("2006-01-02", s)
			if err != nil {
				return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD) or an RFC 3339 time", s)
			}
			if end {
				t = t.Add(24 * time.Hour) // a date as the end includes that day
			}
			return t, nil
		}
		if from, err = parse(get("from"), false); err != nil {
			return
		}
		if to, err = parse(get("to"), true); err != nil {
			return
		}
		span := to.Sub(from)
		if span < time.Hour {
			return from, to, 0, errors.New("the range must be at least one hour, with from before to")
		}
		if span > 366*24*time.Hour {
			return from, to, 0, errors.New("the range must be at most 366 days")
		}
		// Whole hours, at most 60 buckets.
		hours := (span + time.Hour - 1) / time.Hour
		bucket = ((hours + 59) / 60) * time.Hour
		n := (span + bucket - 1) / bucket
		to = from.Add(n * bucket)
		return from, to, bucket, nil
	}
	return from, to, 0, errors.New("range must be 24h, 7d, 30d or custom")
}

func (s *statsDB) bucketsBetween(ctx context.Context, q string, from, to time.Time, bucket time.Duration) ([]int, error) {
	n := int(to.Sub(from) / bucket)
	out := make([]int, n)
	rows, err := s.db.QueryContext(ctx, q, from.UnixMilli(), to.UnixMilli(), bucket.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("dashboard analytics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var c int
		if err := rows.Scan(&b, &c); err != nil {
			return nil, fmt.Errorf("dashboard analytics: %w", err)
		}
		if b >= 0 && b < int64(n) {
			out[b] += c
		}
	}
	return out, rows.Err()
}

func (s *statsDB) countsBetween(ctx context.Context, q string, args ...any) ([]countItem, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("dashboard analytics: %w", err)
	}
	defer rows.Close()
	out := []countItem{}
	for rows.Next() {
		var c countItem
		if err := rows.Scan(&c.Name, &c.Count); err != nil {
			return nil, fmt.Errorf("dashboard analytics: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (d *Dashboard) computeAnalytics(ctx context.Context, from, to time.Time, bucket time.Duration) (*Analytics, error) {
	s := d.stats
	a := &Analytics{From: from, To: to, BucketMinutes: int(bucket / time.Minute), GeneratedAt: d.now().UTC()}
	f, t := from.UnixMilli(), to.UnixMilli()
	var err error
	if a.Logins, err = s.bucketsBetween(ctx, `SELECT (login_time - $1) / $3, COUNT(*) FROM sessions
		WHERE login_time >= $1 AND login_time < $2 GROUP BY 1`, from, to, bucket); err != nil {
		return nil, err
	}
	if a.Ended, err = s.bucketsBetween(ctx, `SELECT (logout_time - $1) / $3, COUNT(*) FROM sessions
		WHERE NOT active AND logout_time >= $1 AND logout_time < $2 GROUP BY 1`, from, to, bucket); err != nil {
		return nil, err
	}
	if a.Refusals, err = s.bucketsBetween(ctx, `SELECT (at - $1) / $3, COUNT(*) FROM failed_logins
		WHERE at >= $1 AND at < $2 AND scope LIKE 'ip:%' GROUP BY 1`, from, to, bucket); err != nil {
		return nil, err
	}
	// Open sessions at the end of each bucket: the open ones now, minus
	// the logins after that point, plus the sessions ended after it.
	open, err := s.count(ctx, `SELECT COUNT(*) FROM sessions WHERE active`)
	if err != nil {
		return nil, err
	}
	var laterLogins, laterEnds int
	if laterLogins, err = s.count(ctx, `SELECT COUNT(*) FROM sessions WHERE login_time >= $1`, t); err != nil {
		return nil, err
	}
	if laterEnds, err = s.count(ctx, `SELECT COUNT(*) FROM sessions WHERE NOT active AND logout_time >= $1`, t); err != nil {
		return nil, err
	}
	a.Active = make([]int, len(a.Logins))
	cur := open - laterLogins + laterEnds
	for i := len(a.Logins) - 1; i >= 0; i-- {
		a.Active[i] = max(cur, 0)
		cur += a.Ended[i] - a.Logins[i]
	}
	a.PeakHours = make([]int, 24)
	rows, err := s.db.QueryContext(ctx, `SELECT (login_time / 3600000) % 24, COUNT(*) FROM sessions
		WHERE login_time >= $1 AND login_time < $2 GROUP BY 1`, f, t)
	if err != nil {
		return nil, fmt.Errorf("dashboard analytics: %w", err)
	}
	for rows.Next() {
		var h int64
		var c int
		if err := rows.Scan(&h, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dashboard analytics: %w", err)
		}
		if h >= 0 && h < 24 {
			a.PeakHours[h] = c
		}
	}
	rows.Close()
	for _, v := range a.Logins {
		a.TotalLogins += v
	}
	for _, v := range a.Refusals {
		a.TotalRefusals += v
	}
	if a.UniqueUsers, err = s.count(ctx, `SELECT COUNT(DISTINCT user_id) FROM sessions WHERE login_time >= $1 AND login_time < $2`, f, t); err != nil {
		return nil, err
	}
	if a.UniqueIPs, err = s.count(ctx, `SELECT COUNT(DISTINCT ip) FROM sessions WHERE login_time >= $1 AND login_time < $2`, f, t); err != nil {
		return nil, err
	}
	// Refusals by reason: wrong credentials and lockouts are failed-login
	// records (kept for the lockout window only); blocked users and policy
	// refusals are revocations published for a refused login's tokens
	// (one login revokes several keys at the same instant).
	var creds, locks int
	if creds, err = s.count(ctx, `SELECT COUNT(*) FROM failed_logins WHERE scope LIKE 'ip:%' AND at >= $1 AND at < $2`, f, t); err != nil {
		return nil, err
	}
	if locks, err = s.count(ctx, `SELECT COUNT(*) FROM failed_logins WHERE scope LIKE 'lock:%' AND at >= $1 AND at < $2`, f, t); err != nil {
		return nil, err
	}
	denied, err := s.countsBetween(ctx, `SELECT reason, COUNT(DISTINCT created_at) FROM revocation_log
		WHERE op = 'revoke' AND reason IN ($1, $2) AND created_at >= $3 AND created_at < $4 GROUP BY reason`,
		protocol.ReasonBlocked, protocol.ReasonPolicy, f, t)
	if err != nil {
		return nil, err
	}
	by := map[string]int{"credentials": creds, "lockout": locks, protocol.ReasonBlocked: 0, protocol.ReasonPolicy: 0}
	for _, c := range denied {
		by[c.Name] += c.Count
	}
	a.RefusalsBy = topCounts(by, 0)
	top := func(col string) ([]countItem, error) {
		return s.countsBetween(ctx, `SELECT `+col+`, COUNT(*) FROM sessions WHERE login_time >= $1 AND login_time < $2
			GROUP BY `+col+` ORDER BY COUNT(*) DESC, `+col+` LIMIT 8`, f, t)
	}
	if a.Devices, err = top("device_type"); err != nil {
		return nil, err
	}
	if a.Browsers, err = top("browser_name"); err != nil {
		return nil, err
	}
	if a.OS, err = top("os_name"); err != nil {
		return nil, err
	}
	// Countries: the name column is grouped; one geo document per group
	// gives the ISO code for the map.
	crow, err := s.db.QueryContext(ctx, `SELECT country, COUNT(*), MIN(geo) FROM sessions
		WHERE login_time >= $1 AND login_time < $2 GROUP BY country ORDER BY COUNT(*) DESC LIMIT 250`, f, t)
	if err != nil {
		return nil, fmt.Errorf("dashboard analytics: %w", err)
	}
	a.Countries = []country{}
	for crow.Next() {
		var c country
		var geo *string
		if err := crow.Scan(&c.Name, &c.Count, &geo); err != nil {
			crow.Close()
			return nil, fmt.Errorf("dashboard analytics: %w", err)
		}
		if geo != nil {
			var g struct {
				Code string `json:"country_code"`
			}
			if json.Unmarshal([]byte(*geo), &g) == nil && len(g.Code) == 2 {
				c.Code = strings.ToUpper(g.Code)
			}
		}
		a.Countries = append(a.Countries, c)
	}
	crow.Close()
	if a.RiskyCount, err = s.count(ctx, `SELECT COUNT(*) FROM sessions WHERE login_time >= $1 AND login_time < $2 AND security_score < $3`,
		f, t, riskyBelow); err != nil {
		return nil, err
	}
	rrows, err := s.db.QueryContext(ctx, `SELECT id, user_id, ip, country, security_score, score_reasons, login_time FROM sessions
		WHERE login_time >= $1 AND login_time < $2 AND security_score < $3 ORDER BY security_score, login_time DESC LIMIT 10`, f, t, riskyBelow)
	if err != nil {
		return nil, fmt.Errorf("dashboard analytics: %w", err)
	}
	defer rrows.Close()
	a.Risky = []risky{}
	for rrows.Next() {
		var r risky
		var reasons string
		var at int64
		if err := rrows.Scan(&r.SessionID, &r.UserID, &r.IP, &r.Country, &r.Score, &reasons, &at); err != nil {
			return nil, fmt.Errorf("dashboard analytics: %w", err)
		}
		var list []string
		_ = json.Unmarshal([]byte(reasons), &list)
		r.Reasons = reasonCodes(list)
		r.LoginTime = time.UnixMilli(at).UTC()
		a.Risky = append(a.Risky, r)
	}
	return a, rrows.Err()
}

// analyticsCache keeps each range's figures for analyticsTTL: several
// people looking at the same range ask once.
type analyticsCache struct {
	mu  sync.Mutex
	val map[string]analyticsEntry
}

type analyticsEntry struct {
	at  time.Time
	val *Analytics
}

const analyticsTTL = 15 * time.Second

func (d *Dashboard) analytics(w http.ResponseWriter, r *http.Request, _ *session) {
	now := d.now().UTC()
	from, to, bucket, err := analyticsRange(r.URL.Query(), now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), map[string]any{"code": "bad_range"})
		return
	}
	if d.stats == nil {
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "partial": true})
		return
	}
	key := fmt.Sprint(from.UnixMilli(), to.UnixMilli(), int64(bucket))
	c := &d.an
	c.mu.Lock()
	if e, ok := c.val[key]; ok && now.Sub(e.at) < analyticsTTL && r.URL.Query().Get("fresh") != "1" {
		c.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"data": e.val})
		return
	}
	c.mu.Unlock()
	a, err := d.computeAnalytics(r.Context(), from, to, bucket)
	if err != nil {
		d.storeError(w, "analytics", err)
		return
	}
	c.mu.Lock()
	if c.val == nil || len(c.val) > 32 {
		c.val = map[string]analyticsEntry{}
	}
	c.val[key] = analyticsEntry{at: now, val: a}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": a})
}
