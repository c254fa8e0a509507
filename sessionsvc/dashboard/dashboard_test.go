package dashboard

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

func testDashboard(t *testing.T, now func() time.Time) *Dashboard {
	t.Helper()
	key, err := secrets.GenerateKey()
	require.NoError(t, err)
	kr, err := secrets.ParseKeyring(key)
	require.NoError(t, err)
	d := &Dashboard{kr: kr, now: now}
	return d
}

func TestSessionCookieSealing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := testDashboard(t, func() time.Time { return now })
	s := &session{Token: "tok", CSRF: "csrf", Expires: now.Add(time.Hour).Unix(), Name: "n"}
	v, err := d.sealSession(s)
	require.NoError(t, err)
	assert.NotContains(t, v, "tok", "the token is encrypted")

	got, err := d.openSession(v, now)
	require.NoError(t, err)
	assert.Equal(t, s, got)

	_, err = d.openSession(v, now.Add(time.Hour))
	assert.ErrorIs(t, err, errExpired)

	// A flipped byte, another key, and a value sealed for something else are refused.
	b := []byte(v)
	b[len(b)-3] ^= 1
	_, err = d.openSession(string(b), now)
	assert.Error(t, err)
	other := testDashboard(t, func() time.Time { return now })
	_, err = other.openSession(v, now)
	assert.Error(t, err)
	foreign, err := d.kr.Seal(`{"t":"tok","c":"x","e":9999999999}`)
	require.NoError(t, err)
	_, err = d.openSession(foreign, now)
	assert.ErrorContains(t, err, "not a dashboard cookie")
	_, err = d.openSession("garbage", now)
	assert.Error(t, err)
}

func TestSecureRequest(t *testing.T) {
	for _, tc := range []struct {
		host, xfp string
		tls       bool
		want      bool
	}{
		{"127.0.0.1:8081", "", false, false},
		{"localhost:8081", "", false, false},
		{"[::1]:8081", "", false, false},
		{"admin.localhost", "", false, false},
		{"sessions.example.com", "", false, true},
		{"10.0.0.5:8081", "", false, true},
		{"127.0.0.1:8081", "https", false, true},
		{"localhost", "", true, true},
	} {
		r := httptest.NewRequest("GET", "/dashboard/", nil)
		r.Host = tc.host
		if tc.xfp != "" {
			r.Header.Set("X-Forwarded-Proto", tc.xfp)
		}
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		assert.Equal(t, tc.want, secureRequest(r), "%+v", tc)
	}
}

func TestPickLanguage(t *testing.T) {
	for h, want := range map[string]string{
		"":                          "en",
		"de-DE,de;q=0.9,en;q=0.8":   "de",
		"ja,fr;q=0.5,es;q=0.7":      "es",
		"pt-BR":                     "pt",
		"fr;q=0,de;q=0.1":           "de",
		"zz, *;q=0.1":               "en",
		"es;q=bogus,fr":             "fr",
		strings.Repeat("xx,", 5000): "en",
	} {
		assert.Equal(t, want, pickLanguage(h), h)
	}
}

func TestCSVCellNeutralisesFormulas(t *testing.T) {
	assert.Equal(t, "'=HYPERLINK(\"x\")", csvCell(`=HYPERLINK("x")`))
	assert.Equal(t, "'+1", csvCell("+1"))
	assert.Equal(t, "'@SUM(A1)", csvCell("@SUM(A1)"))
	assert.Equal(t, "alice", csvCell("alice"))
	assert.Equal(t, "", csvCell(""))
}

// The front end must never build HTML from strings: all data goes in with
// textContent or attributes.
func TestFrontEndNeverParsesHTML(t *testing.T) {
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|setAttribute\("style"|\.style\b`)
	err := fs.WalkDir(webFS, "web", func(p string, de fs.DirEntry, err error) error {
		require.NoError(t, err)
		if de.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(webFS, p)
		require.NoError(t, err)
		if strings.HasSuffix(p, ".js") {
			assert.Empty(t, forbidden.FindAllString(string(b), -1), p)
		}
		if strings.HasSuffix(p, ".html") {
			assert.NotRegexp(t, `<script>|<script [^>]*>[^<]|style=|<style|\son[a-z]+=`, string(b), "no inline script, style or handlers in %s", p)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestIndexAndHeaders(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	a := c.do("GET", "/dashboard/", nil, map[string]string{"Accept-Language": "fr-CA,fr;q=0.9"})
	require.Equal(t, 200, a.status)
	assert.Contains(t, string(a.body), `<html lang="fr">`)
	h := a.header
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.NotContains(t, h.Get("Content-Security-Policy"), "unsafe-inline")
	assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", h.Get("Cache-Control"))

	// Assets referenced by the page are served with their type.
	for _, m := range regexp.MustCompile(`(?:src|href)="(/dashboard/static/[^"]+)"`).FindAllStringSubmatch(string(a.body), -1) {
		r := c.do("GET", m[1], nil, nil)
		assert.Equal(t, 200, r.status, m[1])
		assert.NotEmpty(t, r.header.Get("Content-Type"))
		assert.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'self'")
	}
	assert.Equal(t, 404, c.do("GET", "/dashboard/static/nope.js", nil, nil).status)
	assert.Equal(t, http.StatusFound, c.do("GET", "/dashboard", nil, nil).status)

	// API answers carry the same headers and no-store.
	r := c.do("GET", "/dashboard/api/me", nil, nil)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
}

func TestSignInCookieAndSignOut(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	assert.Equal(t, 401, c.login("wrong-token-wrong-token").status)
	assert.Equal(t, 400, c.login("").status)
	assert.Equal(t, 415, c.do("POST", "/dashboard/api/login", nil, map[string]string{"Content-Type": "text/plain"}).status)

	a := c.login(testAdminToken)
	require.Equal(t, 200, a.status, string(a.body))
	ck := a.header.Get("Set-Cookie")
	assert.Contains(t, ck, cookieDev+"=", "plain-http loopback uses the dev cookie")
	assert.Contains(t, ck, "HttpOnly")
	assert.Contains(t, ck, "SameSite=Strict")
	assert.Contains(t, ck, "Path=/")
	assert.NotContains(t, ck, "Secure", "plain-http localhost cannot keep a Secure cookie")
	assert.NotContains(t, ck, testAdminToken)
	assert.NotEmpty(t, c.csrf)

	me := c.do("GET", "/dashboard/api/me", nil, nil)
	require.Equal(t, 200, me.status)
	assert.Equal(t, c.csrf, me.json(t)["csrf"])

	// Behind an HTTPS proxy the cookie is Secure with the __Host- prefix.
	c2 := e.client()
	a2 := c2.do("POST", "/dashboard/api/login", map[string]string{"token": testAdminToken}, map[string]string{"X-Forwarded-Proto": "https"})
	require.Equal(t, 200, a2.status)
	assert.Contains(t, a2.header.Get("Set-Cookie"), cookieSecure+"=")
	assert.Contains(t, a2.header.Get("Set-Cookie"), "Secure")

	// Sign out needs the CSRF token, then clears the cookie.
	assert.Equal(t, 403, c.do("POST", "/dashboard/api/logout", nil, nil).status)
	out := c.post("POST", "/dashboard/api/logout", nil)
	require.Equal(t, 200, out.status)
	assert.Contains(t, out.header.Get("Set-Cookie"), "Max-Age=0")
	assert.Equal(t, 401, c.do("GET", "/dashboard/api/me", nil, nil).status)
}

func TestSignInRateLimited(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	for range maxLoginFailures {
		require.Equal(t, 401, c.login("wrong-token-wrong-token").status)
	}
	assert.Equal(t, http.StatusTooManyRequests, c.login(testAdminToken).status)
}

func TestRevokedAdminTokenEndsDashboardSession(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	tok := "second-admin-token-abcdefghijkl"
	at, err := e.st.CreateAdminToken(ctx, "second", hashForTest(tok), time.Now().UTC())
	require.NoError(t, err)
	c := e.client()
	require.Equal(t, 200, c.login(tok).status)
	require.Equal(t, 200, c.do("GET", "/dashboard/api/overview", nil, nil).status)
	require.NoError(t, e.st.RevokeAdminToken(ctx, at.ID))
	a := c.do("GET", "/dashboard/api/overview", nil, nil)
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "revoked", a.json(t)["error"].(map[string]any)["details"].(map[string]any)["code"])
	assert.Contains(t, a.header.Get("Set-Cookie"), "Max-Age=0")
}

func TestForgedCookieRefused(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	a := c.do("GET", "/dashboard/api/me", nil, map[string]string{"Cookie": cookieDev + "=enc:v1:deadbeef:AAAA"})
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "invalid", a.json(t)["error"].(map[string]any)["details"].(map[string]any)["code"])
}

func TestCSRFAndTerminateThroughAdminAPI(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		id := e.seed(seedOpt{user: "alice", ip: "203.0.113.7", ua: "Firefox", country: "Germany", browser: "Firefox", device: "desktop", os: "Linux"})
		c := e.admin()
		path := "/dashboard/api/sessions/" + id + "/terminate"

		assert.Equal(t, 403, c.do("POST", path, nil, nil).status, "no CSRF token")
		assert.Equal(t, 403, c.do("POST", path, nil, map[string]string{csrfHeader: "forged"}).status, "wrong CSRF token")
		assert.Equal(t, 403, c.do("POST", path, nil, map[string]string{csrfHeader: c.csrf, "Origin": "https://evil.example"}).status, "cross-origin")
		assert.Equal(t, 403, c.do("POST", path, nil, map[string]string{csrfHeader: c.csrf, "Sec-Fetch-Site": "cross-site"}).status)
		// Another signed-in admin's CSRF token does not fit this session.
		other := e.client()
		require.Equal(t, 200, other.login(testAdminToken).status)
		assert.Equal(t, 403, c.do("POST", path, nil, map[string]string{csrfHeader: other.csrf}).status)
		s, err := e.st.GetSession(context.Background(), id)
		require.NoError(t, err)
		require.True(t, s.Active, "refused requests changed nothing")

		a := c.post("POST", path, nil)
		require.Equal(t, 200, a.status, string(a.body))
		s, err = e.st.GetSession(context.Background(), id)
		require.NoError(t, err)
		assert.False(t, s.Active)
		assert.Equal(t, protocol.ReasonManual, s.TerminationReason)
		assert.True(t, s.TerminatedManually)
		// The revocation reached the plugins' feed, as for an admin API call.
		page, err := e.st.Changes(context.Background(), "", 0, 100, time.Now())
		require.NoError(t, err)
		found := false
		for _, ch := range page.Changes {
			found = found || ch.Key == "sid:"+id
		}
		assert.True(t, found, "revocation logged")

		assert.Equal(t, 200, c.post("POST", "/dashboard/api/sessions/sess_nope/terminate", nil).status, "unknown id: 200, as upstream")
	})
}

func TestPagesData(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		hostileUA := `<script>alert(1)</script>`
		id := e.seed(seedOpt{user: `<img src=x onerror=alert(2)>`, ip: "198.51.100.4", ua: hostileUA, country: "France", browser: "Chrome", device: "mobile", os: "Android", score: 35, reasons: []string{"new country"}})
		e.seed(seedOpt{user: "bob", ip: "198.51.100.5", ua: "curl", country: "Spain", browser: "curl", device: "bot", os: "", last: time.Now().Add(-20 * time.Minute)})
		c := e.admin()

		o := c.data("/dashboard/api/overview")
		assert.EqualValues(t, 1, o["onlineNow"])
		assert.EqualValues(t, 1, o["active15"])
		assert.EqualValues(t, 2, o["active30"])
		assert.EqualValues(t, 2, o["totalSessions"])
		assert.EqualValues(t, 0, o["blockedUsers"])
		assert.Len(t, o["series"].(map[string]any)["logins"], 24)
		assert.Len(t, o["topCountries"], 2)

		list := c.do("GET", "/dashboard/api/sessions?search=France&status=active", nil, nil)
		require.Equal(t, 200, list.status, string(list.body))
		data := list.json(t)["data"].([]any)
		require.Len(t, data, 1)
		assert.Equal(t, hostileUA, data[0].(map[string]any)["userAgent"])
		assert.NotContains(t, string(list.body), "<script>", "JSON escapes markup")
		assert.Equal(t, 400, c.do("GET", "/dashboard/api/sessions?status=bogus", nil, nil).status)

		d := c.data("/dashboard/api/sessions/" + id)
		assert.Equal(t, hostileUA, d["userAgent"])
		assert.Equal(t, []any{"new country"}, d["scoreReasons"])
		assert.Equal(t, 404, c.do("GET", "/dashboard/api/sessions/sess_missing", nil, nil).status)

		// User view with an id that needs escaping, block and unblock.
		uid := `<img src=x onerror=alert(2)>`
		uv := c.do("GET", "/dashboard/api/users/"+escapeSeg(uid), nil, nil)
		require.Equal(t, 200, uv.status, string(uv.body))
		u := uv.json(t)
		assert.Equal(t, uid, u["userId"])
		assert.Equal(t, false, u["blocked"])
		assert.Equal(t, "France", u["countries"].([]any)[0].(map[string]any)["name"])
		assert.EqualValues(t, 1, u["sessions"].(map[string]any)["meta"].(map[string]any)["count"])

		bv := c.do("GET", "/dashboard/api/users/bob", nil, nil).json(t)
		assert.Equal(t, "bot", bv["devices"].([]any)[0].(map[string]any)["name"], "an unknown OS is left out, not shown as ?")
		assert.Equal(t, 400, c.post("POST", "/dashboard/api/users/bob/block", map[string]any{}).status)
		require.Equal(t, 200, c.post("POST", "/dashboard/api/users/bob/block", map[string]any{"blocked": true}).status)
		blocked, err := e.st.IsBlocked(context.Background(), "bob")
		require.NoError(t, err)
		assert.True(t, blocked)
		bobs, err := e.st.ListSessions(context.Background(), store.SessionQuery{UserID: "bob", ActiveOnly: true})
		require.NoError(t, err)
		assert.Zero(t, bobs.Total, "blocking ended bob's sessions")
		require.Equal(t, 200, c.post("POST", "/dashboard/api/users/bob/block", map[string]any{"blocked": false}).status)
		blocked, err = e.st.IsBlocked(context.Background(), "bob")
		require.NoError(t, err)
		assert.False(t, blocked)

		ta := c.post("POST", "/dashboard/api/users/"+escapeSeg(uid)+"/terminate-all", nil)
		require.Equal(t, 200, ta.status, string(ta.body))
		assert.Equal(t, "All sessions terminated for user "+uid, ta.json(t)["message"])
		ss, err := e.st.ListSessions(context.Background(), store.SessionQuery{UserID: uid, ActiveOnly: true})
		require.NoError(t, err)
		assert.Zero(t, ss.Total)
	})
}

func escapeSeg(s string) string {
	r := strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23", " ", "%20", "<", "%3C", ">", "%3E", "=", "%3D")
	return r.Replace(s)
}

func TestSettingsThroughAdminAPI(t *testing.T) {
	e := newTestEnv(t)
	c := e.admin()
	g := c.do("GET", "/dashboard/api/settings", nil, nil)
	require.Equal(t, 200, g.status)
	assert.EqualValues(t, 15, g.json(t)["settings"].(map[string]any)["inactivityTimeout"])

	bad := c.post("PUT", "/dashboard/api/settings", map[string]any{"inactivityTimeout": 0, "blockedCountries": []string{"<b>"}})
	require.Equal(t, 400, bad.status)
	errs := bad.json(t)["error"].(map[string]any)["details"].(map[string]any)["errors"].([]any)
	assert.Len(t, errs, 2)

	ok := c.post("PUT", "/dashboard/api/settings", map[string]any{"inactivityTimeout": 42})
	require.Equal(t, 200, ok.status, string(ok.body))
	// In effect at once: the server's own view changed.
	assert.Equal(t, 42*time.Minute, e.svc.Server.InactivityTimeout(context.Background()))
	assert.Equal(t, 403, c.do("PUT", "/dashboard/api/settings", map[string]any{"inactivityTimeout": 5}, nil).status)
}

func TestFailedDeliveriesRetry(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, e.st.EnqueueAlerts(ctx, []store.Alert{{Event: "user.blocked", Channel: "webhook:<siem>", Payload: json.RawMessage(`{}`), NextAttempt: now}}))
	claimed, err := e.st.ClaimAlerts(ctx, "test", 10, now, time.Minute)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, e.st.MarkAlertFailed(ctx, claimed[0].ID, "connection refused", now, true))

	c := e.admin()
	l := c.do("GET", "/dashboard/api/alerts", nil, nil)
	require.Equal(t, 200, l.status)
	items := l.json(t)["data"].([]any)
	require.Len(t, items, 1)
	assert.Equal(t, "connection refused", items[0].(map[string]any)["lastError"])
	assert.Equal(t, "dead", items[0].(map[string]any)["status"], "the admin API's view of an alert (alert.ToJSON)")

	assert.Equal(t, 403, c.do("POST", "/dashboard/api/alerts/1/retry", nil, nil).status)
	assert.Equal(t, 400, c.post("POST", "/dashboard/api/alerts/x/retry", nil).status)
	r := c.post("POST", "/dashboard/api/alerts/"+jsonNum(items[0].(map[string]any)["id"])+"/retry", nil)
	require.Equal(t, 200, r.status, string(r.body))
	dead, err := e.st.ListAlerts(ctx, true, 10)
	require.NoError(t, err)
	assert.Empty(t, dead, "back in the queue")
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestExport(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		e.seed(seedOpt{user: "=cmd|' /C calc'!A0", ip: "192.0.2.1", ua: "<script>alert(1)</script>", country: "Germany", browser: "Firefox"})
		e.seed(seedOpt{user: "carol", ip: "192.0.2.2", ua: "Safari", country: "Portugal", browser: "Safari"})
		c := e.admin()

		a := c.do("GET", "/dashboard/api/export?format=csv&search=Germany", nil, nil)
		require.Equal(t, 200, a.status, string(a.body))
		assert.Contains(t, a.header.Get("Content-Disposition"), "attachment")
		rows, err := csv.NewReader(strings.NewReader(string(a.body))).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.Equal(t, csvHeader, rows[0])
		assert.Equal(t, "'=cmd|' /C calc'!A0", rows[1][2], "formula neutralised")

		j := c.do("GET", "/dashboard/api/export?format=json&sort=userId:asc", nil, nil)
		require.Equal(t, 200, j.status)
		var list []map[string]any
		require.NoError(t, json.Unmarshal(j.body, &list), string(j.body))
		require.Len(t, list, 2)
		assert.Equal(t, "=cmd|' /C calc'!A0", list[0]["userId"])
		assert.Equal(t, "carol", list[1]["userId"])

		assert.Equal(t, 400, c.do("GET", "/dashboard/api/export?format=xml", nil, nil).status)
		assert.Equal(t, 400, c.do("GET", "/dashboard/api/export?format=csv&sort=password", nil, nil).status)
		assert.Equal(t, 401, e.client().do("GET", "/dashboard/api/export?format=csv", nil, nil).status)
	})
}

func TestLiveEvents(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		c := e.admin()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/dashboard/api/events", nil)
		require.NoError(t, err)
		res, err := c.c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
		assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
		sc := bufio.NewScanner(res.Body)
		next := func(event string) string {
			var cur string
			for sc.Scan() {
				line := sc.Text()
				if v, ok := strings.CutPrefix(line, "event: "); ok {
					cur = v
				}
				if v, ok := strings.CutPrefix(line, "data: "); ok && cur == event {
					return v
				}
			}
			t.Fatalf("stream ended before a %q event: %v", event, sc.Err())
			return ""
		}
		next("hello")
		id := e.seed(seedOpt{user: "dave", ip: "192.0.2.9", login: time.Now().UTC()})
		data := next("sessions")
		assert.Contains(t, data, `"type":"started"`)
		assert.Contains(t, data, id)
		_, err = e.st.EndSessions(context.Background(), store.EndFilter{SessionIDs: []string{id}}, protocol.ReasonManual, true, time.Now().UTC())
		require.NoError(t, err)
		data = next("sessions")
		assert.Contains(t, data, `"type":"ended"`)
		assert.Contains(t, data, `"reason":"manual"`)
	})
}

func TestUnknownEndpoint(t *testing.T) {
	e := newTestEnv(t)
	a := e.client().do("GET", "/dashboard/api/nope", nil, nil)
	assert.Equal(t, 404, a.status)
}

// An open event stream must not hold up a graceful shutdown.
func TestEventStreamsDoNotBlockShutdown(t *testing.T) {
	svc := newService(t, "sqlite://"+filepath.Join(t.TempDir(), "db"), map[string]string{"SHUTDOWN_TIMEOUT": "60s"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	res, err := hc.Post(base+"/dashboard/api/login", "application/json", strings.NewReader(`{"token":"`+testAdminToken+`"}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	res, err = hc.Get(base + "/dashboard/api/events")
	require.NoError(t, err)
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "retry")

	cancel()
	testenv.Returned(t, done, 20*time.Second, "shutdown waited for the open event stream (SHUTDOWN_TIMEOUT is 60 s)")
}

// Without SQL access for figures (DatabaseURL unknown) the table falls back
// to the admin API (given as Config.API) and the overview shows what the
// store interface gives.
func TestWithoutSQLAccess(t *testing.T) {
	dir := t.TempDir()
	key, err := secrets.GenerateKey()
	require.NoError(t, err)
	cfg, _, _, err := service.ParseConfig("sessionsvc", nil, func(k string) string {
		return map[string]string{"DATABASE_URL": "sqlite://" + filepath.Join(dir, "db"), "ADMIN_TOKEN": testAdminToken,
			"MESHSESSION_INTERNAL_KEY": "test-internal-key-0123456789", "SESSION_ENCRYPTION_KEY": key}[k]
	}, io.Discard)
	require.NoError(t, err)
	svc, err := service.New(context.Background(), cfg, false, service.Hooks{}, nil, io.Discard)
	require.NoError(t, err)
	defer svc.Close()
	d, err := New(context.Background(), Config{Store: svc.Store, API: svc.Handler()})
	require.NoError(t, err)
	mux := http.NewServeMux()
	for p, h := range d.Mounts() {
		mux.Handle(p, h)
	}
	mux.Handle("/", svc.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	e := &testEnv{t: t, svc: svc, srv: srv, st: svc.Store}
	e.seed(seedOpt{user: "zoe", ip: "192.0.2.50", ua: "x", country: "Spain"})
	c := e.admin()
	l := c.do("GET", "/dashboard/api/sessions?search=zoe", nil, nil)
	require.Equal(t, 200, l.status, string(l.body))
	assert.EqualValues(t, 1, l.json(t)["meta"].(map[string]any)["count"])
	ov := c.data("/dashboard/api/overview")
	assert.Equal(t, true, ov["partial"])
	assert.EqualValues(t, 1, ov["totalSessions"])
	assert.Nil(t, ov["series"])
}

// The table's own queries filter, search (LIKE wildcards are literal),
// sort and page as the admin API does, with capped counts.
func TestTableQueries(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		now := time.Now().UTC()
		for i := range 30 {
			e.seed(seedOpt{user: fmt.Sprintf("u%02d", i), ip: "192.0.2.1", ua: "x", country: "Spain", login: now.Add(-time.Duration(i) * time.Minute)})
		}
		e.seed(seedOpt{user: "a_b", ip: "192.0.2.2", ua: "x", country: "Chile"})
		e.seed(seedOpt{user: "axb", ip: "192.0.2.3", ua: "x", country: "Chile"})
		gone := e.seed(seedOpt{user: "gone", ip: "192.0.2.4", ua: "x"})
		_, err := e.st.EndSessions(context.Background(), store.EndFilter{SessionIDs: []string{gone}}, protocol.ReasonLogout, false, now)
		require.NoError(t, err)
		c := e.admin()
		get := func(q string) ([]any, map[string]any) {
			a := c.do("GET", "/dashboard/api/sessions?"+q, nil, nil)
			require.Equal(t, 200, a.status, string(a.body))
			m := a.json(t)
			return m["data"].([]any), m["meta"].(map[string]any)
		}
		data, meta := get("search=a_b")
		require.Len(t, data, 1, "_ is not a wildcard")
		assert.Equal(t, "a_b", data[0].(map[string]any)["userId"])
		assert.EqualValues(t, 1, meta["count"])

		data, meta = get("pageSize=10&page=2&sort=userId:asc")
		require.Len(t, data, 10)
		assert.Equal(t, "u07", data[0].(map[string]any)["userId"])
		assert.EqualValues(t, 33, meta["count"])
		assert.EqualValues(t, 4, meta["pagination"].(map[string]any)["pageCount"])

		data, _ = get("status=loggedout")
		require.Len(t, data, 1)
		assert.Equal(t, gone, data[0].(map[string]any)["sessionId"])
		data, _ = get("status=active&sort=-lastActive&pageSize=5")
		assert.Len(t, data, 5)
		for _, bad := range []string{"pageSize=0", "pageSize=101", "page=-1", "sort=password", "status=nope"} {
			assert.Equal(t, 400, c.do("GET", "/dashboard/api/sessions?"+bad, nil, nil).status, bad)
		}
	})
}

// A search that names a user exactly uses the user index; match=contains
// searches every column.
func TestSearchExactUser(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		e.seed(seedOpt{user: "user42", ip: "192.0.2.1", ua: "x"})
		e.seed(seedOpt{user: "user420", ip: "192.0.2.2", ua: "x"})
		c := e.admin()
		a := c.do("GET", "/dashboard/api/sessions?search=user42", nil, nil)
		require.Equal(t, 200, a.status)
		m := a.json(t)
		assert.Len(t, m["data"], 1)
		assert.Equal(t, "user", m["meta"].(map[string]any)["exactMatch"])
		a = c.do("GET", "/dashboard/api/sessions?search=user42&match=contains", nil, nil)
		m = a.json(t)
		assert.Len(t, m["data"], 2)
		assert.Equal(t, "", m["meta"].(map[string]any)["exactMatch"])
		x := c.do("GET", "/dashboard/api/export?format=json&search=user42", nil, nil)
		var list []map[string]any
		require.NoError(t, json.Unmarshal(x.body, &list))
		assert.Len(t, list, 1, "export shows the same selection")
	})
}

// TestBadURLTextRefused on both databases: a path or query holding a NUL
// or invalid UTF-8 is a 400 (PostgreSQL refused such a query with a 500).
func TestBadURLTextRefused(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		c := e.admin()
		for _, p := range []string{
			"/dashboard/api/sessions?search=%ff",
			"/dashboard/api/sessions?search=%00",
			"/dashboard/api/sessions?userId=%00&match=exact",
			"/dashboard/api/sessions/%ff",
			"/dashboard/api/users/%ff",
			"/dashboard/api/export?format=csv&userId=%00",
		} {
			a := c.do("GET", p, nil, nil)
			assert.Equal(t, 400, a.status, "%s: %s", p, a.body)
		}
		assert.Equal(t, 200, c.do("GET", "/dashboard/api/sessions?search=%C3%A9", nil, nil).status, "UTF-8 is fine")
	})
}

// TestBodyTooLarge: a body past the limit is a 413, not a 400 with the
// usage.
func TestBodyTooLarge(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	a := c.do("POST", "/dashboard/api/login", map[string]string{"token": strings.Repeat("t", 10<<10)}, nil)
	assert.Equal(t, 413, a.status, "%s", a.body)
	c = e.admin()
	ids := make([]string, 0, 200_000)
	for i := range 200_000 {
		ids = append(ids, fmt.Sprintf("sess_%020d", i))
	}
	a = c.post("POST", "/dashboard/api/bulk", map[string]any{"action": "terminate", "sessionIds": ids})
	assert.Equal(t, 413, a.status, "%s", a.body[:min(len(a.body), 200)])
}
