package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Browser end-to-end tests drive Debian's chromium headless against a real
// sessionsvc. Without chromium they skip, unless CI=true or
// MESHSESSION_REQUIRE_BROWSER=1, where they fail. MESHSESSION_CHROMIUM
// overrides the browser path. Screenshots go to artifacts/screenshots/.

func chromiumPath() string {
	if p := os.Getenv("MESHSESSION_CHROMIUM"); p != "" {
		if found, err := exec.LookPath(p); err == nil {
			return found
		}
		return "" // an override that names no browser counts as missing
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func requireBrowser(t *testing.T) string {
	t.Helper()
	p := chromiumPath()
	required := os.Getenv("MESHSESSION_REQUIRE_BROWSER") == "1" || os.Getenv("CI") == "true"
	if p == "" {
		if required {
			t.Fatal("chromium not found (install it with scripts/ensure-tools); browser tests are required here")
		}
		t.Skip("chromium not found; run scripts/ensure-tools (set MESHSESSION_REQUIRE_BROWSER=1 to make this a failure)")
	}
	if testing.Short() && !required {
		t.Skip("browser tests skipped in -short mode")
	}
	return p
}

// screenshotDir is <repo>/artifacts/screenshots.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.mod not found")
		dir = parent
	}
	out := filepath.Join(dir, "artifacts", "screenshots")
	require.NoError(t, os.MkdirAll(out, 0o755))
	return out
}

type browser struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	mu     sync.Mutex
	errs   []string
	alerts []string
	// console holds console.error calls and browser log errors (a failed
	// request, a CSP violation), for the tests that expect none.
	console []string
}

func newBrowser(t *testing.T) *browser {
	exe := requireBrowser(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	tctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{t: t, ctx: tctx, shots: screenshotDir(t)}
	require.NoError(t, chromedp.Listen(tctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.mu.Lock()
			b.errs = append(b.errs, exceptionText(e.ExceptionDetails))
			b.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				b.mu.Lock()
				b.console = append(b.console, "console.error")
				b.mu.Unlock()
			}
		case *cdplog.EventEntryAdded:
			if e.Entry != nil && e.Entry.Level == cdplog.EntryLevelError {
				b.mu.Lock()
				b.console = append(b.console, string(e.Entry.Source)+": "+e.Entry.Text+" "+e.Entry.URL)
				b.mu.Unlock()
			}
		case *page.EventJavascriptDialogOpening:
			b.mu.Lock()
			b.alerts = append(b.alerts, e.Message)
			b.mu.Unlock()
			go func() {
				_, _ = chromedp.Call(tctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}))
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.failShot(what)
		require.NoError(b.t, err, what)
	}
}

// failShot saves the page as it was when a step failed.
func (b *browser) failShot(what string) {
	if png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(b.shots, "FAILED-"+strings.ReplaceAll(what, " ", "-")+".png"), png, 0o644)
	}
	b.mu.Lock()
	b.t.Logf("JavaScript errors so far: %q", b.errs)
	b.mu.Unlock()
	if html, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
		b.t.Logf("page text when %q failed:\n%s", what, html)
	}
}

// assertNoErrors checks that no script from data ran (no alert dialog) and
// no JavaScript error was thrown.
func (b *browser) assertNoErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(b.t, b.alerts, "no script from data ran")
	assert.Empty(b.t, b.errs, "no JavaScript errors")
}

// assertNoConsoleErrors checks that nothing was logged as an error (a test
// that provokes failed requests on purpose does not call it).
func (b *browser) assertNoConsoleErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(b.t, b.console, "no console errors")
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, sel)
	return s
}

// clear empties an input (as a user selecting all and deleting would).
func (b *browser) clear(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[any](`document.getElementById("`+id+`").value = ""`))
		return err
	})
}

func (b *browser) eval(js string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	require.NoError(b.t, err, js)
}

func (b *browser) waitFor(what, jsCond string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](jsCond, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		b.failShot(what)
	}
	require.NoError(b.t, err, "waiting for %s (%s)", what, jsCond)
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644))
}

func (b *browser) confirmDialog() {
	b.t.Helper()
	b.do("confirm", chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitNotVisible(chromedp.CSS("#confirm")))
}

func TestBrowserEndToEnd(t *testing.T) {
	b := newBrowser(t)
	e := newTestEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	hostile := `<script>alert(1)</script>`
	alice := e.seed(seedOpt{user: "alice", ip: "203.0.113.10", ua: hostile, country: "France", browser: "Chrome 131", device: "mobile",
		os: "Android", score: 45, reasons: []string{"login from a new country", "<b>not bold</b>"}, login: now.Add(-2 * time.Hour)})
	bob := e.seed(seedOpt{user: "bob", ip: "198.51.100.20", ua: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", country: "Germany",
		browser: "Firefox 130", device: "desktop", os: "Linux", login: now.Add(-90 * time.Minute)})
	e.seed(seedOpt{user: "bob", ip: "198.51.100.21", ua: "Safari", country: "Germany", browser: "Safari 17", device: "tablet", os: "iPadOS",
		login: now.Add(-3 * time.Hour), last: now.Add(-40 * time.Minute)})
	for i, c := range []string{"Spain", "Portugal", "Brazil", "Germany", "France", "Spain"} {
		e.seed(seedOpt{user: "user" + string(rune('a'+i)), ip: "192.0.2." + string(rune('1'+i)), ua: "Mozilla/5.0", country: c,
			browser: "Edge 130", device: "desktop", os: "Windows", login: now.Add(-time.Duration(i+4) * time.Hour)})
	}
	hostileUser := `<img src=x onerror=alert(2)>`
	e.seed(seedOpt{user: hostileUser, ip: "192.0.2.66", ua: `"><svg onload=alert(3)>`, country: `<i>Chile</i>`, browser: "<b>B</b>", device: "desktop", os: "Linux",
		login: now.Add(-30 * time.Hour)})
	hostileHost := `<img src=x onerror=alert(4)>`
	sreq, err := http.NewRequest("PUT", e.srv.URL+"/magic-sessionmanager/settings", strings.NewReader(`{"smtp":{"host":"`+strings.ReplaceAll(hostileHost, `"`, `\"`)+`"}}`))
	require.NoError(t, err)
	sreq.Header.Set("Authorization", "Bearer "+testAdminToken)
	sreq.Header.Set("Content-Type", "application/json")
	sres, err := http.DefaultClient.Do(sreq)
	require.NoError(t, err)
	sres.Body.Close()
	require.Equal(t, 200, sres.StatusCode)
	require.NoError(t, e.st.EnqueueAlerts(ctx, []store.Alert{{Event: "session.terminated", Channel: "webhook:siem", Payload: json.RawMessage(`{}`), NextAttempt: now}}))
	claimed, err := e.st.ClaimAlerts(ctx, "t", 5, now, time.Minute)
	require.NoError(t, err)
	require.NoError(t, e.st.MarkAlertFailed(ctx, claimed[0].ID, `dial tcp: connection refused <i>`, now, true))

	base := e.srv.URL + "/dashboard/"

	// Sign in.
	b.do("open", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.shot("01-sign-in")
	b.do("bad token", chromedp.SendKeys(chromedp.CSS("#token"), "not-a-valid-token-at-all"), chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitFor("refusal", `document.getElementById('login-error').textContent.length > 0`)
	b.do("sign in", b.clear("token"), chromedp.SendKeys(chromedp.CSS("#token"), testAdminToken),
		chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS("#stat-online")))
	assert.Equal(t, "10", strings.TrimSpace(b.text("#stat-active .stat-value")))
	b.waitFor("chart", `document.querySelectorAll('svg.chart rect').length === 24`)
	b.waitFor("live", `document.getElementById('live').classList.contains('on')`)
	b.shot("02-overview")
	fcp, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`))
	require.NoError(t, err)
	t.Logf("first contentful paint of the dashboard, cold browser: %.0f ms", fcp)
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#stat-online")))
	fcp, err = chromedp.Run(b.ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`))
	require.NoError(t, err)
	data, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`performance.now()`))
	require.NoError(t, err)
	t.Logf("reload: first contentful paint %.0f ms, overview with data by %.0f ms", fcp, data)

	// Find a session by search, open it: the hostile user agent is text.
	b.do("sessions", chromedp.Click(chromedp.CSS(`#nav a[data-route="sessions"]`)), chromedp.WaitVisible(chromedp.CSS("#sessions-table")))
	b.waitFor("all rows", `document.querySelectorAll('#sessions-table tbody tr').length === 10`)
	b.waitFor("hostile user id shown as text", `[...document.querySelectorAll('#sessions-table td a')].some((a) => a.textContent === '<img src=x onerror=alert(2)>') && document.querySelectorAll('main img, main svg:not(.chart), main i').length === 0`)
	b.do("search", chromedp.SendKeys(chromedp.CSS("#search"), "France"))
	b.waitFor("search result", `document.querySelectorAll('#sessions-table tbody tr').length === 2`)
	b.shot("03-sessions-search")
	b.do("open detail", chromedp.Click(chromedp.CSS(`tr[data-session="`+alice+`"] a.session-link`)), chromedp.WaitVisible(chromedp.CSS("#detail-ua")))
	assert.Equal(t, hostile, b.text("#detail-ua"))
	b.waitFor("no injected script", `document.querySelectorAll('main script, main b').length === 0`)
	b.shot("04-session-detail")

	// Terminate it, with confirmation.
	b.do("terminate", chromedp.Click(chromedp.CSS("#terminate")))
	b.confirmDialog()
	b.waitFor("terminated", `!document.getElementById('terminate') && document.querySelector('.badge.b-terminated') !== null`)
	s, err := e.st.GetSession(ctx, alice)
	require.NoError(t, err)
	assert.False(t, s.Active)
	assert.Equal(t, "manual", s.TerminationReason)

	// The table updates live (SSE) when sessions end or start elsewhere.
	b.do("list", chromedp.Navigate(base+"#/sessions?status=active"), chromedp.WaitVisible(chromedp.CSS("#sessions-table")))
	b.waitFor("active rows", `document.querySelector('tr[data-session="`+bob+`"]') !== null`)
	b.eval(`window.__noReload = true`)
	req, err := http.NewRequest("POST", e.srv.URL+"/magic-sessionmanager/sessions/"+bob+"/terminate", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	b.waitFor("row gone live", `document.querySelector('tr[data-session="`+bob+`"]') === null && window.__noReload === true`)
	fresh := e.seed(seedOpt{user: "erin", ip: "192.0.2.99", ua: "Firefox", country: "Spain", browser: "Firefox 131", device: "desktop", os: "macOS", login: time.Now().UTC()})
	b.waitFor("new row live", `document.querySelector('tr[data-session="`+fresh+`"]') !== null && window.__noReload === true`)

	// Block a user from the user view.
	b.do("user view", chromedp.Click(chromedp.CSS(`tr[data-session="`+fresh+`"] td a`)), chromedp.WaitVisible(chromedp.CSS("#block-toggle")))
	assert.Equal(t, "erin", b.text("#user-id"))
	b.do("block", chromedp.Click(chromedp.CSS("#block-toggle")))
	b.confirmDialog()
	b.waitFor("blocked", `document.querySelector('#user-state .b-terminated') !== null`)
	blocked, err := e.st.IsBlocked(ctx, "erin")
	require.NoError(t, err)
	assert.True(t, blocked)
	b.do("bob", chromedp.Navigate(base+"#/user/bob"), chromedp.WaitVisible(chromedp.CSS("#user-sessions")))
	b.shot("05-user")

	// Change a setting: a bad value gets a clear message, a good one applies at once.
	b.do("settings", chromedp.Click(chromedp.CSS(`#nav a[data-route="settings"]`)), chromedp.WaitVisible(chromedp.CSS("#set-inactivityTimeout")))
	b.waitFor("outbox", `document.querySelector('#outbox-table') !== null`)
	b.waitFor("hostile setting shown as text", `document.getElementById('set-smtp-host').value === '<img src=x onerror=alert(4)>' && document.querySelectorAll('main img').length === 0`)
	b.do("bad value", b.clear("set-inactivityTimeout"), chromedp.SendKeys(chromedp.CSS("#set-inactivityTimeout"), "0"),
		chromedp.Click(chromedp.CSS("#settings-save")))
	b.waitFor("field error", `document.getElementById('set-inactivityTimeout-err').textContent.includes('1')`)
	b.do("bad country", b.clear("set-inactivityTimeout"), chromedp.SendKeys(chromedp.CSS("#set-inactivityTimeout"), "25"),
		chromedp.SendKeys(chromedp.CSS("#set-blockedCountries"), "XX1"), chromedp.Click(chromedp.CSS("#settings-save")))
	b.waitFor("country error", `document.getElementById('set-blockedCountries-err').textContent.includes('XX1')`)
	b.do("good value", b.clear("set-blockedCountries"), chromedp.Click(chromedp.CSS("#settings-save")))
	b.waitFor("saved", `document.getElementById('settings-msg').classList.contains('ok')`)
	assert.Equal(t, 25*time.Minute, e.svc.Server.InactivityTimeout(ctx))
	b.shot("06-settings")
	b.do("retry delivery", chromedp.Click(chromedp.CSS("#outbox-table button")))
	b.waitFor("outbox emptied", `document.getElementById('outbox-empty') !== null`)

	// Switch language: texts, and numbers and dates per locale.
	b.eval(`(() => { const s = document.getElementById('lang'); s.value = 'de'; s.dispatchEvent(new Event('change')); })()`)
	b.waitFor("german", `document.querySelector('#nav a[data-route="settings"]').textContent === 'Einstellungen'`)
	b.do("overview de", chromedp.Click(chromedp.CSS(`#nav a[data-route="overview"]`)), chromedp.WaitVisible(chromedp.CSS("#stat-online")))
	b.waitFor("german overview", `document.querySelector('main h1').textContent === 'Übersicht' && document.documentElement.lang === 'de'`)
	b.shot("07-overview-de")
	b.do("sessions de", chromedp.Navigate(base+"#/sessions?pageSize=25"), chromedp.WaitVisible(chromedp.CSS("#sessions-table")))
	b.waitFor("german table", `document.querySelector('#filter-status option[value=all]').textContent === 'Alle'`)

	// Phone width.
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Sleep(200*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(b.shots, "08-sessions-phone-de.png"), png, 0o644))
	b.do("reset", chromedp.EmulateViewport(1280, 900))

	// Keyboard: a page change focuses the content; Tab reaches its first control.
	b.waitFor("main focused", `document.activeElement && document.activeElement.id === 'main'`)
	b.do("tab", chromedp.KeyEvent("\t"))
	b.waitFor("filter focused by keyboard", `document.activeElement && document.activeElement.id === 'filter-status'`)

	// Sign out.
	b.do("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	res2, err := http.Get(e.srv.URL + "/dashboard/api/me")
	require.NoError(t, err)
	res2.Body.Close()
	assert.Equal(t, 401, res2.StatusCode)

	b.assertNoErrors()
}

// TestBrowserRevokedToken: revoking the admin token sends the open
// dashboard back to the sign-in form with a clear message.
func TestBrowserRevokedToken(t *testing.T) {
	b := newBrowser(t)
	e := newTestEnv(t)
	ctx := context.Background()
	tok := "browser-admin-token-0123456789"
	at, err := e.st.CreateAdminToken(ctx, "browser", hashForTest(tok), time.Now().UTC())
	require.NoError(t, err)
	b.do("sign in", chromedp.Navigate(e.srv.URL+"/dashboard/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), tok), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#stat-online")))
	require.NoError(t, e.st.RevokeAdminToken(ctx, at.ID))
	b.do("navigate", chromedp.Click(chromedp.CSS(`#nav a[data-route="sessions"]`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	assert.Contains(t, b.text("#login-error"), "revoked")
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "exception"
	}
	s := d.Text
	if d.Exception != nil {
		s += " " + d.Exception.Description
	}
	return s
}
