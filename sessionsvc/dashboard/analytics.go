package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Analytics is the analytics page's figures for one time range. Every
// figure is one aggregate query over an index range (login_time,
// logout_time, login_refusals (at, reason)); active sessions
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
		if from.Year() < 1970 || to.Year() > 9000 {
			return from, to, 0, errors.New("the range must lie between the years 1970 and 9000")
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
	return s.buckets(ctx, "dashboard analytics", int(to.Sub(from)/bucket), q, from.UnixMilli(), to.UnixMilli(), bucket.Milliseconds())
}

func (s *statsDB) countsBetween(ctx context.Context, q string, args ...any) ([]countItem, error) {
	return queryAll(ctx, s.db, "dashboard analytics", scanCount, q, args...)
}

func (d *Dashboard) computeAnalytics(ctx context.Context, from, to time.Time, bucket time.Duration) (*Analytics, error) {
	s := d.stats
	a := &Analytics{From: from, To: to, BucketMinutes: int(bucket / time.Minute), GeneratedAt: d.now().UTC()}
	f, t := from.UnixMilli(), to.UnixMilli()
	var err error
	// One pass over the logins of the range (the login_time index, one
	// table read per login) gives the per-login figures; the rest are
	// index-range counts on other columns and tables.
	if err := s.scanLogins(ctx, a, from, to, bucket); err != nil {
		return nil, err
	}
	if a.Ended, err = s.bucketsBetween(ctx, `SELECT (logout_time - $1) / $3, COUNT(*) FROM sessions
		WHERE NOT active AND logout_time >= $1 AND logout_time < $2 GROUP BY 1`, from, to, bucket); err != nil {
		return nil, err
	}
	// Refusals over time: wrong credentials (failed logins reported by the
	// proxy), from the refused-login record kept until the retention.
	if a.Refusals, err = s.bucketsBetween(ctx, `SELECT (at - $1) / $3, CAST(SUM(n) AS BIGINT) FROM login_refusals
		WHERE at >= $1 AND at < $2 AND reason = '`+store.RefusalCredentials+`' GROUP BY 1`, from, to, bucket); err != nil {
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
	for _, v := range a.Refusals {
		a.TotalRefusals += v
	}
	// Refusals by reason: counted per minute where the refusal was decided (store.LoginRefusals): wrong credentials, lockout
	// (at the check or at registration), blocked user, login policy.
	by := make(map[string]int, len(store.RefusalReasons))
	for _, r := range store.RefusalReasons {
		by[r] = 0
	}
	counts, err := s.countsBetween(ctx, `SELECT reason, CAST(SUM(n) AS BIGINT) FROM login_refusals WHERE at >= $1 AND at < $2 GROUP BY reason`, f, t)
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		by[c.Name] += c.Count
	}
	a.RefusalsBy = topCounts(by, 0)
	// The riskiest logins' reasons (at most ten rows by id).
	for i := range a.Risky {
		var reasons string
		if err := s.db.QueryRowContext(ctx, `SELECT score_reasons FROM sessions WHERE id = $1`, a.Risky[i].SessionID).Scan(&reasons); err != nil {
			continue // deleted meanwhile
		}
		var list []string
		_ = json.Unmarshal([]byte(reasons), &list)
		a.Risky[i].Reasons = reasonCodes(list)
	}
	return a, nil
}

// scanLogins reads the logins of [from, to) once and fills the login
// series, the hours of day, the unique users and addresses, the device,
// browser, OS and country mixes and the riskiest logins.
func (s *statsDB) scanLogins(ctx context.Context, a *Analytics, from, to time.Time, bucket time.Duration) error {
	f, t := from.UnixMilli(), to.UnixMilli()
	n := int(to.Sub(from) / bucket)
	a.Logins = make([]int, n)
	a.PeakHours = make([]int, 24)
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, ip, login_time, device_type, browser_name, os_name, country, security_score
		FROM sessions WHERE login_time >= $1 AND login_time < $2`, f, t)
	if err != nil {
		return fmt.Errorf("dashboard analytics: %w", err)
	}
	defer rows.Close()
	users, ips := map[string]struct{}{}, map[string]struct{}{}
	devices, browsers, oses, countries := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	var top []risky
	for rows.Next() {
		var r risky
		var at int64
		var dev, br, os string
		if err := rows.Scan(&r.SessionID, &r.UserID, &r.IP, &at, &dev, &br, &os, &r.Country, &r.Score); err != nil {
			return fmt.Errorf("dashboard analytics: %w", err)
		}
		if b := (at - f) / bucket.Milliseconds(); b >= 0 && b < int64(n) {
			a.Logins[b]++
		}
		a.PeakHours[(at/3_600_000)%24]++
		a.TotalLogins++
		users[r.UserID] = struct{}{}
		ips[r.IP] = struct{}{}
		devices[dev]++
		browsers[br]++
		oses[os]++
		countries[r.Country]++
		if r.Score < riskyBelow {
			a.RiskyCount++
			r.LoginTime = time.UnixMilli(at).UTC()
			top = append(top, r)
			if len(top) > 64 { // keep the ten lowest without holding every risky login
				sortRisky(top)
				top = top[:10]
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dashboard analytics: %w", err)
	}
	sortRisky(top)
	a.Risky = top[:min(len(top), 10)]
	if a.Risky == nil {
		a.Risky = []risky{}
	}
	for i := range a.Risky {
		a.Risky[i].Reasons = []reasonCode{}
	}
	a.UniqueUsers, a.UniqueIPs = len(users), len(ips)
	a.Devices, a.Browsers, a.OS = topCounts(devices, 8), topCounts(browsers, 8), topCounts(oses, 8)
	a.Countries = []country{}
	for _, c := range topCounts(countries, 250) {
		a.Countries = append(a.Countries, country{Name: c.Name, Count: c.Count, Code: s.countryCode(ctx, c.Name, f)})
	}
	return nil
}

func sortRisky(list []risky) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].Score != list[j].Score {
			return list[i].Score < list[j].Score
		}
		return list[i].LoginTime.After(list[j].LoginTime)
	})
}

// countryCode finds the ISO code of a country name from one session's
// geo document (the newest login from there since f stops the scan early).
func (s *statsDB) countryCode(ctx context.Context, name string, f int64) string {
	if name == "" {
		return ""
	}
	var geo *string
	if err := s.db.QueryRowContext(ctx, `SELECT geo FROM sessions WHERE login_time >= $1 AND country = $2 ORDER BY login_time DESC LIMIT 1`,
		f, name).Scan(&geo); err != nil || geo == nil {
		return ""
	}
	var g struct {
		Code string `json:"country_code"`
	}
	if json.Unmarshal([]byte(*geo), &g) == nil && len(g.Code) == 2 {
		return strings.ToUpper(g.Code)
	}
	return ""
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

// analyticsTTL: how long a range's figures are reused. Long ranges are
// costly (one pass over their logins) and change little in a few minutes.
func analyticsTTL(span time.Duration) time.Duration {
	switch {
	case span <= 24*time.Hour:
		return 15 * time.Second
	case span <= 7*24*time.Hour:
		return time.Minute
	}
	return 5 * time.Minute
}

func (d *Dashboard) analytics(w http.ResponseWriter, r *http.Request, _ *session) {
	now := d.now().UTC()
	from, to, bucket, err := analyticsRange(r.URL.Query(), now)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, err.Error(), map[string]any{"code": "bad_range"})
		return
	}
	if d.stats == nil {
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "partial": true})
		return
	}
	key := fmt.Sprint(from.UnixMilli(), to.UnixMilli(), int64(bucket))
	c := &d.an
	c.mu.Lock()
	if e, ok := c.val[key]; ok && now.Sub(e.at) < analyticsTTL(to.Sub(from)) && r.URL.Query().Get("fresh") != "1" {
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
