package dashboard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The pages tour: every page at 1440×900 and 390×844 in all five
// languages. It fails on a key the current language lacks (the page's t()
// records them in window.__mssMissing), a catalogue key shown as text, a
// page wider than a phone screen, an error box, or a console error.
// MESHSESSION_SCREENSHOTS=<dir> (make screenshots) saves each page there.

var tourLangs = []string{"en", "de", "es", "fr", "pt"}

type viewport struct {
	name string
	w, h int64
}

var tourSizes = []viewport{{"desktop", 1440, 900}, {"phone", 390, 844}}

// phone: the viewport is emulated as a phone (mobile, scale 2).
func (v viewport) phone() bool { return v.name == "phone" }

// tour runs fn in every tour viewport and, in each, every tour language.
func (b *browser) tour(fn func(size viewport, lang string)) {
	b.t.Helper()
	for _, size := range tourSizes {
		var opts []chromedp.EmulateViewportOption
		if size.phone() {
			opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
		}
		b.do("viewport "+size.name, chromedp.EmulateViewport(size.w, size.h, opts...))
		for _, lang := range tourLangs {
			b.setLang(lang)
			fn(size, lang)
		}
	}
}

// signIn opens the dashboard at desktop size and signs in with the test
// admin token.
func (b *browser) signIn(base string) {
	b.t.Helper()
	b.do("sign in", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testAdminToken), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#stat-online")))
}

// tourPage: where to go and what shows the page has its data.
type tourPage struct {
	name, hash, ready string
}

// seedTour fills a dashboard with sessions that exercise every label.
func seedTour(e *testEnv) (alice string) {
	now := time.Now().UTC()
	alice = e.seed(seedOpt{user: "alice", ip: "203.0.113.10", ua: "Mozilla/5.0 (Linux; Android 14) Chrome/131", country: "France", cc: "FR",
		browser: "Chrome 131", device: "mobile", os: "Android", score: 35, login: now.Add(-2 * time.Hour),
		reasons: []string{"16 concurrent active sessions (more than 5)", "new country FR (not in the last 10 sessions)", "VPN network",
			"impossible travel: 9012 km from Lisbon, PT in 1h5m0s", "new device Chrome/Android"}})
	e.seed(seedOpt{user: "bob", ip: "10.0.0.7", ua: "curl/8", country: "Private network", browser: "curl", device: "bot", os: "",
		login: now.Add(-90 * time.Minute)})
	for i, c := range [][2]string{{"Germany", "DE"}, {"Spain", "ES"}, {"Brazil", "BR"}, {"Portugal", "PT"}, {"United States", "US"}, {"Japan", "JP"}} {
		e.seed(seedOpt{user: fmt.Sprintf("user%d", i), ip: fmt.Sprintf("192.0.2.%d", i+1), ua: "Mozilla/5.0", country: c[0], cc: c[1],
			browser: "Firefox 131", device: []string{"desktop", "tablet", "mobile"}[i%3], os: "Windows", score: 60 + i*7,
			login: now.Add(-time.Duration(i*5+3) * time.Hour)})
	}
	return alice
}

func tourPages(alice string) []tourPage {
	return []tourPage{
		{"overview", "#/overview", `document.querySelector('#stat-online') && document.querySelector('svg.chart rect')`},
		{"analytics", "#/analytics?range=7d", `document.querySelector('#world-map rect.l1, #world-map rect.l2, #world-map rect.l3, #world-map rect.l4, #world-map rect.l5') && document.querySelector('#risky-table')`},
		{"sessions", "#/sessions", `document.querySelectorAll('#sessions-table tbody tr').length >= 8`},
		{"session", "#/session/" + alice, `document.querySelector('#score-reasons li')`},
		{"user", "#/user/alice", `document.querySelector('#user-sessions')`},
		{"settings", "#/settings", `document.querySelector('#outbox-table, #outbox-empty')`},
		{"audit", "#/audit", `document.querySelectorAll('#audit-table tbody tr').length >= 2`},
		{"lockouts", "#/lockouts", `document.querySelector('#lockouts-table tr[data-lock="identifier:mallory"]')`},
	}
}

// keyLike finds catalogue keys shown as text ("an.map", "device.bot").
const keyLike = `/(^|\s)(nav|ov|an|set|audit|lock|bulk|sel|row|device|score|refusal|col|status|reason|tl|user|session|v|geo)\.[a-z][\w.]*(\s|$)/m`

func (b *browser) setLang(lang string) {
	b.t.Helper()
	b.eval(`(() => { const s = document.getElementById('lang'); s.value = '` + lang + `'; s.dispatchEvent(new Event('change')); })()`)
	b.waitFor("language "+lang, `document.documentElement.lang === '`+lang+`'`)
}

func (b *browser) checkPage(what string, phone bool) {
	b.t.Helper()
	problems, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		const miss = window.__mssMissing || [];
		if (miss.length) out.push("untranslated: " + [...new Set(miss)].join(", "));
		window.__mssMissing = [];
		const text = document.body.innerText;
		const m = text.match(`+keyLike+`);
		if (m) out.push("catalogue key shown: " + m[0].trim());
		if (document.querySelector('main .error-state')) out.push("error box: " + document.querySelector('main .error-state').innerText);
		if (!document.getElementById('banner').hidden) out.push("banner: " + document.getElementById('banner').innerText);
		const de = document.documentElement;
		if (`+fmt.Sprint(phone)+` && de.scrollWidth > de.clientWidth + 1) {
			const wide = [...document.querySelectorAll('body *')].filter((n) => n.getBoundingClientRect().right > de.clientWidth + 1).slice(0, 3)
				.map((n) => n.tagName + (n.id ? '#' + n.id : '') + '.' + n.className);
			out.push("scrolls sideways: " + de.scrollWidth + " > " + de.clientWidth + " " + wide.join(" "));
		}
		return out;
	})()`))
	require.NoError(b.t, err)
	if len(problems) > 0 {
		b.failShot(what)
	}
	assert.Empty(b.t, problems, what)
}

func (b *browser) tourShot(dir, name string) {
	b.t.Helper()
	if dir == "" {
		return
	}
	if strings.Contains(name, "-phone-") {
		// A phone page as screens of 390×844, as a person scrolls it (a
		// full-length phone image is too narrow to read).
		n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`Math.min(4, Math.ceil(document.documentElement.scrollHeight / window.innerHeight))`))
		require.NoError(b.t, err)
		for i := 0; i < n; i++ {
			b.eval(fmt.Sprintf(`window.scrollTo(0, %d * window.innerHeight)`, i))
			png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
			require.NoError(b.t, err)
			require.NoError(b.t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, i+1)), png, 0o644))
		}
		b.eval(`window.scrollTo(0, 0)`)
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

func TestBrowserPagesAllLanguages(t *testing.T) {
	b := newBrowser(t)
	e := newTestEnv(t)
	alice := seedTour(e)
	shots := os.Getenv("MESHSESSION_SCREENSHOTS")
	if shots != "" {
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}
	lockFor(t, e, "mallory")
	// An admin action for the audit trail, and a session ended by it.
	c := e.admin()
	require.Equal(t, 200, c.post("POST", "/dashboard/api/users/user5/terminate-all", nil).status)
	require.Equal(t, 200, c.post("POST", "/dashboard/api/users/user4/block", map[string]any{"blocked": true}).status)
	base := e.srv.URL + "/dashboard/"
	b.do("open", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.checkPage("sign-in", false)
	b.tourShot(shots, "00-sign-in")
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), testAdminToken), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#stat-online")))
	// The "cannot reach sessionsvc" banner goes as soon as sessionsvc answers
	// again (it used to stay over the sign-in form after a restart).
	b.eval(`window.__fetch = window.fetch; window.fetch = () => Promise.reject(new TypeError('connection refused'))`)
	b.eval(`location.hash = '#/sessions'`)
	b.waitFor("network banner", `!document.getElementById('banner').hidden`)
	b.eval(`window.fetch = window.__fetch; location.hash = '#/overview'`)
	b.waitFor("banner gone", `document.getElementById('banner').hidden && !!document.querySelector('#stat-online')`)
	pages := tourPages(alice)
	b.tour(func(size viewport, lang string) {
		phone := size.phone()
		for i, p := range pages {
			what := fmt.Sprintf("%s %s %s", p.name, lang, size.name)
			b.eval(`window.__mssMissing = []; location.hash = '` + strings.ReplaceAll(p.hash, "'", `\'`) + `'`)
			b.waitFor(what, `location.hash === '`+p.hash+`' && !document.querySelector('main .loading') && !!(`+p.ready+`)`)
			b.checkPage(what, phone)
			if phone && p.name == "overview" {
				h, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`document.querySelector('header.top').getBoundingClientRect().height`))
				require.NoError(t, err)
				assert.Less(t, h, 130.0, "phone header height (%s)", lang)
			}
			if lang == "en" || lang == "de" || shots != "" && p.name == "analytics" {
				b.tourShot(shots, fmt.Sprintf("%02d-%s-%s-%s", i+1, p.name, size.name, lang))
			}
		}
	})
	// A custom range, and one that ends before it starts (refused in the page).
	b.do("desktop again", chromedp.EmulateViewport(1440, 900))
	day := func(d time.Duration) string { return time.Now().Add(d).Format("2006-01-02") }
	b.eval(`location.hash = '#/analytics?range=custom&from=` + day(-10*24*time.Hour) + `&to=` + day(0) + `'`)
	b.waitFor("custom range", `!!document.querySelector('#range-from') && !!document.querySelector('#world-map') && document.querySelector('[data-range=custom]').getAttribute('aria-checked') === 'true'`)
	b.do("bad range", chromedp.SetValue(chromedp.CSS("#range-from"), day(0)), chromedp.SetValue(chromedp.CSS("#range-to"), day(-10*24*time.Hour)),
		chromedp.Click(chromedp.CSS("#range-apply")))
	b.waitFor("range refused", `!!document.querySelector('#range-error')`)
	b.checkPage("custom range", false)
	// Dark mode follows the system setting.
	_, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
	require.NoError(t, err)
	b.do("desktop", chromedp.EmulateViewport(1440, 900))
	b.setLang("en")
	b.eval(`location.hash = '#/analytics'`)
	b.waitFor("dark analytics", `!!document.querySelector('#world-map') && getComputedStyle(document.documentElement).backgroundColor === 'rgb(15, 21, 32)'`)
	b.tourShot(shots, "90-analytics-dark")
	b.eval(`location.hash = '#/sessions'`)
	b.waitFor("dark sessions", `!!document.querySelector('#sessions-table')`)
	b.tourShot(shots, "91-sessions-dark")

	b.assertNoErrors()
	b.assertNoConsoleErrors()
}
