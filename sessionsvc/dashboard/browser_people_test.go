package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// seedNamed registers a login whose answer named the user, as the proxy
// does (the names are stored sealed).
func (e *testEnv) seedNamed(t *testing.T, userID, key, username, email string) {
	t.Helper()
	body, err := json.Marshal(protocol.RegisterRequest{UserID: userID, Keys: []string{"sid:" + key}, IP: "192.0.2.77",
		UserAgent: "Mozilla/5.0 (Windows NT 10.0) Firefox/131.0", Route: "/api/auth/local", Username: username, Email: email})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", e.srv.URL+protocol.PathSessions, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderKey, "test-internal-key-0123456789")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
}

// TestBrowserPeople: people, not ids. The username and email show in the
// table, the detail, the user view and the dialogs, in every language at
// both sizes, and a search by either finds the user.
func TestBrowserPeople(t *testing.T) {
	b := newBrowser(t)
	e := newTestEnv(t)
	e.seedNamed(t, "41", "p-1", "Alice Martin", "alice@example.com")
	e.seedNamed(t, "41", "p-2", "Alice Martin", "alice@example.com")
	e.seedNamed(t, "42", "p-3", "Bob", "bob@example.com")
	b.do("open", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.srv.URL+"/dashboard/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testAdminToken), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#stat-online")))
	for _, size := range tourSizes {
		phone := size.name == "phone"
		opts := []chromedp.EmulateViewportOption{}
		if phone {
			opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
		}
		b.do("viewport "+size.name, chromedp.EmulateViewport(size.w, size.h, opts...))
		for _, lang := range tourLangs {
			b.setLang(lang)
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
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(t, b.errs, "no JavaScript errors")
	assert.Empty(t, b.console, "no console errors")
}
