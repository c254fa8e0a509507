package dashboard

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkDashboard seeds MESHSESSION_BENCH_SESSIONS sessions (default
// 1,000,000) into SQLite and measures the calls the pages make, through
// HTTP with a signed-in cookie, as the browser makes them. Targets: every
// table query < 50 ms, first paint (HTML and assets) < 300 ms.
//
//	go test -run '^$' -bench Dashboard -benchtime 20x ./sessionsvc/dashboard/
func BenchmarkDashboard(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("MESHSESSION_BENCH_SESSIONS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err, "MESHSESSION_BENCH_SESSIONS")
	}
	e := newTestEnv(b)
	seedBulk(b, e.dbPath, n)
	c := e.client()
	require.Equal(b, 200, c.login(testAdminToken).status)

	page := c.do("GET", "/dashboard/", nil, nil)
	require.Equal(b, 200, page.status)
	var assets []string
	for _, m := range regexp.MustCompile(`(?:src|href)="(/dashboard/static/[^"]+)"`).FindAllStringSubmatch(string(page.body), -1) {
		assets = append(assets, m[1])
	}
	get := func(b *testing.B, path string) {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		res, err := c.c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%s: status %d", path, res.StatusCode)
		}
	}
	run := func(name string, paths ...string) {
		b.Run(name, func(b *testing.B) {
			for _, p := range paths { // warm up once
				get(b, p)
			}
			start := time.Now()
			for b.Loop() {
				for _, p := range paths {
					get(b, p)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
	run("first-paint-html+assets", append([]string{"/dashboard/"}, assets...)...)
	run("overview-computed", "/dashboard/api/overview?fresh=1")
	run("overview-cached", "/dashboard/api/overview")
	run("analytics-24h-computed", "/dashboard/api/analytics?range=24h&fresh=1")
	run("analytics-7d-computed", "/dashboard/api/analytics?range=7d&fresh=1")
	run("analytics-30d-computed", "/dashboard/api/analytics?range=30d&fresh=1")
	run("analytics-30d-cached", "/dashboard/api/analytics?range=30d")
	run("sessions-page1", "/dashboard/api/sessions?pageSize=25")
	run("sessions-page1000", "/dashboard/api/sessions?pageSize=25&page=1000")
	run("sessions-active", "/dashboard/api/sessions?status=active&pageSize=25")
	run("sessions-idle", "/dashboard/api/sessions?status=idle&pageSize=25")
	run("sessions-loggedout", "/dashboard/api/sessions?status=loggedout&sort=-logoutTime&pageSize=25")
	run("sessions-terminated", "/dashboard/api/sessions?status=terminated&sort=-logoutTime&pageSize=25")
	run("sessions-active-sort-lastActive", "/dashboard/api/sessions?status=active&sort=-lastActive&pageSize=25")
	run("sessions-sort-userId", "/dashboard/api/sessions?sort=userId&pageSize=25")
	// Not offered by the UI (no index in the store): for the record.
	run("sessions-all-sort-lastActive", "/dashboard/api/sessions?sort=-lastActive&pageSize=25")
	run("sessions-search-exact-user", "/dashboard/api/sessions?search=user4242&pageSize=25")
	run("sessions-search-contains-rare", "/dashboard/api/sessions?search=user4242&match=contains&pageSize=25")
	run("sessions-search-contains-common", "/dashboard/api/sessions?search=Portugal&pageSize=25")
	run("export-csv-user", "/dashboard/api/export?format=csv&search=user4242")
	run("session-detail", "/dashboard/api/sessions/sess_b"+strconv.Itoa(n))
	run("user-view", "/dashboard/api/users/user4242")
	run("failed-deliveries", "/dashboard/api/alerts")
}

// seedBulk inserts n sessions with one set-based INSERT: 50,000 users,
// logins spread over 90 days, the newest 10% still open (a quarter of
// them seen in the last 15 minutes), six countries, four browsers.
func seedBulk(b *testing.B, dbPath string, n int) {
	b.Helper()
	start := time.Now()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	require.NoError(b, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UTC().UnixMilli()
	span := int64(90 * 24 * time.Hour / time.Millisecond)
	step := span / int64(n)
	_, err = db.Exec(fmt.Sprintf(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %[1]d)
		INSERT INTO sessions (id, user_id, ip, user_agent, login_time, last_active, logout_time, active, terminated_manually,
			termination_reason, device_type, browser_name, os_name, geo, country, security_score, score_reasons, expires_at, route, locale)
		SELECT 'sess_b' || i, 'user' || (i %% 50000),
			'10.' || (i %% 250) || '.' || ((i / 250) %% 250) || '.' || (i %% 7),
			'Mozilla/5.0 bench ' || (i %% 13),
			%[2]d - (%[1]d - i) * %[3]d,
			CASE WHEN i > %[1]d * 9 / 10 THEN %[2]d - (i %% 3600) * 1000 ELSE %[2]d - (%[1]d - i) * %[3]d + 600000 END,
			CASE WHEN i > %[1]d * 9 / 10 THEN NULL ELSE %[2]d - (%[1]d - i) * %[3]d + 3600000 END,
			CASE WHEN i > %[1]d * 9 / 10 THEN TRUE ELSE FALSE END,
			CASE WHEN i <= %[1]d * 9 / 10 AND i %% 4 = 3 THEN TRUE ELSE FALSE END,
			CASE WHEN i > %[1]d * 9 / 10 THEN '' ELSE CASE i %% 4 WHEN 0 THEN 'logout' WHEN 1 THEN 'idle' WHEN 2 THEN 'expired' ELSE 'manual' END END,
			CASE i %% 3 WHEN 0 THEN 'desktop' WHEN 1 THEN 'mobile' ELSE 'tablet' END,
			CASE i %% 4 WHEN 0 THEN 'Chrome 131' WHEN 1 THEN 'Firefox 130' WHEN 2 THEN 'Safari 17' ELSE 'Edge 130' END,
			CASE i %% 4 WHEN 0 THEN 'Windows' WHEN 1 THEN 'Linux' WHEN 2 THEN 'macOS' ELSE 'Android' END,
			'{"country":"' || (CASE i %% 6 WHEN 0 THEN 'Germany' WHEN 1 THEN 'France' WHEN 2 THEN 'Spain' WHEN 3 THEN 'Portugal' WHEN 4 THEN 'Brazil' ELSE 'United States' END) || '","city":"City ' || (i %% 50) || '"}',
			CASE i %% 6 WHEN 0 THEN 'Germany' WHEN 1 THEN 'France' WHEN 2 THEN 'Spain' WHEN 3 THEN 'Portugal' WHEN 4 THEN 'Brazil' ELSE 'United States' END,
			40 + i %% 61, '[]', %[2]d - (%[1]d - i) * %[3]d + 86400000, '/api/auth/local', ''
		FROM c`, n, now, step))
	require.NoError(b, err)
	_, err = db.Exec(`INSERT INTO user_blocks (user_id, blocked, updated_at) SELECT 'user' || value, TRUE, 0 FROM generate_series(1, 100)`)
	if err != nil { // generate_series is optional in SQLite builds
		_, err = db.Exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100)
			INSERT INTO user_blocks (user_id, blocked, updated_at) SELECT 'user' || i, TRUE, 0 FROM c`)
	}
	require.NoError(b, err)
	_, err = db.Exec(`ANALYZE`)
	require.NoError(b, err)
	b.Logf("seeded %d sessions in %v", n, time.Since(start).Round(time.Millisecond))
}
