package dashboard

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// confirmSays waits for the confirmation dialog, checks its text names
// what it acts on, and confirms.
func (b *browser) confirmSays(what string, parts ...string) {
	b.t.Helper()
	b.do(what+": dialog", chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	txt := b.text("#confirm-text")
	for _, p := range parts {
		assert.Contains(b.t, txt, p, what)
	}
	b.do(what+": confirm", chromedp.Click(chromedp.CSS("#confirm-ok")), chromedp.WaitNotVisible(chromedp.CSS("#confirm")))
}

// press clicks an element in one step (find and click together): the
// table re-renders on live updates, so a node found in one step may be
// gone in the next.
func (b *browser) press(what, sel string) {
	b.t.Helper()
	js := "document.querySelector(" + strconv.Quote(sel) + ")"
	b.waitFor(what, `(() => { const n = `+js+`; if (!n || n.disabled || n.closest('[hidden]')) return false; n.click(); return true; })()`)
}

// TestBrowserActions: act where you look, in every language at both
// sizes: terminate from a row, terminate and block a selection, terminate
// all of a user's sessions from the user view.
func TestBrowserActions(t *testing.T) {
	b := newBrowser(t)
	e := newTestEnv(t)
	ctx := context.Background()
	shots := os.Getenv("MESHSESSION_SCREENSHOTS")
	base := e.srv.URL + "/dashboard/"
	b.signIn(base)
	active := func(uid string) int {
		p, err := e.st.ListSessions(ctx, store.SessionQuery{UserID: uid, ActiveOnly: true})
		require.NoError(t, err)
		return p.Total
	}
	b.tour(func(size viewport, lang string) {
		phone := size.phone()
		tag := lang + "-" + size.name
		ua, ub, uc := "act-"+tag+"-a", "act-"+tag+"-b", "act-"+tag+"-c"
		now := time.Now().UTC()
		for i, u := range []string{ua, ua, ub} {
			e.seed(seedOpt{user: u, ip: fmt.Sprintf("198.51.100.%d", i+1), ua: "Mozilla/5.0", country: "Spain", cc: "ES",
				browser: "Firefox 131", device: "desktop", os: "Linux", login: now.Add(-time.Duration(i+1) * time.Minute)})
		}
		list := "#/sessions?search=act-" + tag + "&match=contains&status=active"
		b.eval(`window.__mssMissing = []; location.hash = '` + list + `'`)
		b.waitFor("rows "+tag, `document.querySelectorAll('#sessions-table tbody tr').length === 3`)
		b.checkPage("sessions "+tag, phone)

		// Terminate from a row.
		b.press("row terminate "+tag, `#sessions-table tbody tr:has(a[href="#/user/`+ub+`"]) .row-terminate`)
		b.confirmSays("row terminate "+tag, ub)
		b.waitFor("row gone "+tag, `document.querySelectorAll('#sessions-table tbody tr').length === 2`)
		assert.Zero(t, active(ub), tag)

		// Select all, terminate the selection.
		b.press("select all "+tag, "#select-all")
		b.waitFor("bulk bar "+tag, `!document.getElementById('bulk-bar').hidden`)
		b.checkPage("selection "+tag, phone)
		if shots != "" && (lang == "en" || lang == "fr") {
			b.tourShot(shots, "20-bulk-"+size.name+"-"+lang)
		}
		b.press("bulk terminate "+tag, "#bulk-terminate")
		b.confirmSays("bulk terminate "+tag, ua)
		b.waitFor("all ended "+tag, `!!document.querySelector('#sessions-empty')`)
		assert.Zero(t, active(ua), tag)
		b.checkPage("after bulk "+tag, phone)

		// Block the users of a selection.
		e.seed(seedOpt{user: ua, ip: "198.51.100.9", ua: "Mozilla/5.0", browser: "Firefox 131", device: "mobile", os: "Android"})
		e.seed(seedOpt{user: ub, ip: "198.51.100.10", ua: "Mozilla/5.0", browser: "Firefox 131", device: "mobile", os: "Android"})
		b.eval(`location.hash = '` + list + `&page=1'`)
		b.waitFor("rows again "+tag, `document.querySelectorAll('#sessions-table tbody tr').length === 2`)
		b.press("select row 1 "+tag, `#sessions-table tbody tr:nth-child(1) input.pick-row`)
		b.press("select row 2 "+tag, `#sessions-table tbody tr:nth-child(2) input.pick-row`)
		b.press("bulk block "+tag, "#bulk-block")
		b.confirmSays("bulk block "+tag, ua, ub)
		b.waitFor("blocked rows gone "+tag, `!!document.querySelector('#sessions-empty')`)
		for _, u := range []string{ua, ub} {
			blocked, err := e.st.IsBlocked(ctx, u)
			require.NoError(t, err)
			assert.True(t, blocked, u)
		}

		// Terminate all of a user's sessions from the user view.
		for i := 0; i < 2; i++ {
			e.seed(seedOpt{user: uc, ip: "192.0.2.50", ua: "Mozilla/5.0", browser: "Safari 17", device: "tablet", os: "iPadOS"})
		}
		b.eval(`location.hash = '#/user/` + uc + `'`)
		b.waitFor("user view "+tag, `document.querySelectorAll('#user-sessions tbody tr').length === 2 && !document.getElementById('terminate-all').disabled`)
		b.checkPage("user "+tag, phone)
		b.press("terminate all "+tag, "#terminate-all")
		b.confirmSays("terminate all "+tag, uc)
		b.waitFor("user ended "+tag, `document.getElementById('terminate-all') && document.getElementById('terminate-all').disabled`)
		assert.Zero(t, active(uc), tag)
		b.checkPage("user after "+tag, phone)

		// Lift a lockout; the audit trail names the admin.
		locked := "mallory-" + tag
		lockFor(t, e, locked)
		b.eval(`location.hash = '#/lockouts'`)
		b.waitFor("lockouts "+tag, `!!document.querySelector('#lockouts-table tr[data-lock="identifier:`+locked+`"]')`)
		b.checkPage("lockouts "+tag, phone)
		b.press("unlock "+tag, `#lockouts-table tr[data-lock="identifier:`+locked+`"] button.unlock`)
		b.confirmSays("unlock "+tag, locked)
		b.waitFor("unlocked "+tag, `!!document.querySelector('#lockouts-empty')`)
		b.eval(`location.hash = '#/audit'`)
		b.waitFor("audit "+tag, `[...document.querySelectorAll('#audit-table tbody tr')].some((r) => r.textContent.includes('`+locked+`'))`)
		b.checkPage("audit "+tag, phone)
	})
	b.assertNoErrors()
	b.assertNoConsoleErrors()
}

// TestBrowserPeople: people, not ids. The username and email show in the
// table, the detail, the user view and the dialogs, in every language at
// both sizes, and a search by either finds the user.
func TestBrowserPeople(t *testing.T) {
	b := newBrowser(t)
	e := newTestEnv(t)
	named := func(userID, sid, username, email string) {
		e.register(t, protocol.RegisterRequest{UserID: userID, Keys: []string{"sid:" + sid}, IP: "192.0.2.77",
			UserAgent: "Mozilla/5.0 (Windows NT 10.0) Firefox/131.0", Route: "/api/auth/local", Username: username, Email: email})
	}
	named("41", "p-1", "Alice Martin", "alice@example.com")
	named("41", "p-2", "Alice Martin", "alice@example.com")
	named("42", "p-3", "Bob", "bob@example.com")
	b.signIn(e.srv.URL + "/dashboard/")
	b.tour(func(size viewport, lang string) {
		phone := size.phone()
		tag := lang + " " + size.name
		for _, term := range []string{"alice@example.com", "Alice Martin"} {
			b.eval(`location.hash = '#/sessions?search=` + term + `'`)
			b.waitFor("search "+term+" "+tag, `document.querySelectorAll('#sessions-table tbody tr').length === 2 &&
				[...document.querySelectorAll('#sessions-table .person')].every((n) => n.textContent === 'Alice Martin · alice@example.com')`)
		}
		b.checkPage("people table "+tag, phone)
		b.press("select all "+tag, "#select-all")
		b.press("bulk block "+tag, "#bulk-block")
		b.do("dialog "+tag, chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
		assert.Contains(t, b.text("#confirm-text"), "Alice Martin", tag)
		b.do("cancel "+tag, chromedp.Click(chromedp.CSS("#confirm-cancel")), chromedp.WaitNotVisible(chromedp.CSS("#confirm")))
		b.eval(`location.hash = '#/user/41'`)
		b.waitFor("user view "+tag, `document.getElementById('user-name') && document.getElementById('user-name').textContent === 'Alice Martin · alice@example.com'`)
		b.checkPage("people user "+tag, phone)
		b.press("session link "+tag, `#user-sessions a.session-link`)
		b.waitFor("detail "+tag, `document.getElementById('detail-person') && document.getElementById('detail-person').textContent.includes('alice@example.com')`)
		b.checkPage("people detail "+tag, phone)
	})
	b.assertNoErrors()
	b.assertNoConsoleErrors()
}
