package server

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestNULAndBadUTF8 on both databases: free text with a NUL (JSON's
// \u0000) is kept with U+FFFD in its place — a login check with such an
// identifier is decided and a failure counted, not failed open by a 500 on
// PostgreSQL — and a URL whose decoded path or query holds a NUL or
// invalid UTF-8 is a 400 before any query runs.
func TestNULAndBadUTF8(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		e := newEnvWithStore(t, st)
		for i := 0; i < 5; i++ {
			r := e.fail("198.51.100.9", "admin\u0000")
			require.Equal(t, 200, r.status, string(r.raw))
		}
		r := e.check("198.51.100.9", "admin\u0000")
		assert.Equal(t, protocol.DecisionDeny, r.body["decision"], "the failures were counted: %s", r.raw)

		r = e.internal("POST", protocol.PathSessions, map[string]any{"userId": "u\u00001", "keys": []string{"sid:nul1"},
			"ip": "203.0.113.7", "userAgent": "agent\u0000x", "route": "/l\u0000", "locale": "de\u0000", "identifier": "i\u0000"})
		require.Equal(t, 200, r.status, string(r.raw))
		r = e.admin("GET", "/magic-sessionmanager/user/u%EF%BF%BD1/sessions", nil)
		require.Equal(t, 200, r.status, string(r.raw))
		assert.Contains(t, string(r.raw), "agent\uFFFDx", "kept, NUL replaced")

		long := strings.Repeat("é", 3000) // cut to the limit between two characters, not inside one
		r = e.internal("POST", protocol.PathSessions, map[string]any{"userId": "u3", "keys": []string{"sid:long"}, "userAgent": "x" + long, "identifier": "y" + long})
		require.Equal(t, 200, r.status, string(r.raw))
		r = e.check("198.51.100.10", "z"+long)
		assert.Equal(t, protocol.DecisionAllow, r.body["decision"], string(r.raw))

		r = e.internal("POST", protocol.PathSessions, map[string]any{"userId": "a\nb", "keys": []string{"sid:crlf"}})
		assert.Equal(t, 400, r.status, "a user id the admin routes could not name: %s", r.raw)

		tok, _ := e.signIn("u2", "s2")
		for _, c := range []struct{ who, method, path string }{
			{"user", "DELETE", "/api/magic-sessionmanager/my-sessions/%ff"},
			{"user", "DELETE", "/api/magic-sessionmanager/my-sessions/a%00b"},
			{"admin", "GET", "/magic-sessionmanager/user/%ff/sessions"},
			{"admin", "GET", "/magic-sessionmanager/sessions?search=%00"},
			{"admin", "GET", "/magic-sessionmanager/sessions?search=%ff%fe"},
			{"admin", "GET", "/magic-sessionmanager/sessions?userId=%ff"},
			{"admin", "POST", "/magic-sessionmanager/sessions/%ff/terminate"},
			{"admin", "POST", "/magic-sessionmanager/user/%00/toggle-block"},
			{"admin", "GET", "/magic-sessionmanager/sessions?%ff=1"},
		} {
			var r resp
			if c.who == "user" {
				r = e.user(tok, c.method, c.path, nil)
			} else {
				r = e.admin(c.method, c.path, nil)
			}
			assert.Equal(t, 400, r.status, "%s %s: %s", c.method, c.path, r.raw)
		}
	})
}

func TestCleanText(t *testing.T) {
	type inner struct{ S string }
	v := struct {
		A    string
		L    []string
		P    *inner
		M    map[string]string
		N    []inner
		keep string
	}{A: "a\x00b", L: []string{"ok", "\xff"}, P: &inner{S: "x\x00"}, M: map[string]string{"k": "v\x00"}, N: []inner{{S: "\xc3"}}, keep: "\x00"}
	CleanText(&v)
	assert.Equal(t, "a\uFFFDb", v.A)
	assert.Equal(t, []string{"ok", "\uFFFD"}, v.L)
	assert.Equal(t, "x\uFFFD", v.P.S)
	assert.Equal(t, "v\uFFFD", v.M["k"])
	assert.Equal(t, "\uFFFD", v.N[0].S)
	assert.Equal(t, "\x00", v.keep, "unexported fields are not touched")
}

type failingBody struct{ err error }

func (f failingBody) Read([]byte) (int, error) { return 0, f.err }
func (failingBody) Close() error               { return nil }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestBodyReadErrors: a body the client stopped sending is a 408, one cut
// off a 400, neither a 500, and the socket addresses stay out of the
// answer.
func TestBodyReadErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"stalled", timeoutErr{}, 408},
		{"cut off", io.ErrUnexpectedEOF, 400},
	} {
		for _, path := range []string{"/magic-sessionmanager/settings", "/internal/v1/revoke"} {
			method := "PUT"
			if strings.HasPrefix(path, "/internal/") {
				method = "POST"
			}
			req := httptest.NewRequest(method, path, nil)
			req.Body = failingBody{tc.err}
			req.ContentLength = 100
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+testAdmin)
			req.Header.Set(protocol.HeaderKey, testKey)
			rec := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code, "%s %s: %s", tc.name, path, rec.Body)
			assert.NotContains(t, rec.Body.String(), "127.0.0.1", tc.name)
		}
	}
}

func TestIsJSONType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON; charset=utf-8": true, "application/vnd.api+json": true,
		"application/jsonp": false, "text/json": false, "application/json-seq": false, "": false, "application/json;;": false,
	} {
		assert.Equal(t, want, IsJSONType(ct), ct)
	}
}
