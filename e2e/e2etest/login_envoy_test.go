package e2etest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/sessionsvc/enrich/wire"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// Logins and refreshes on Envoy's default host (a paused headers callback
// stops everything until the filter resumes), with several workers: the
// dev proxy reads envoy.yaml, which does not set
// allow_on_headers_stop_iteration.

// appMiddleware changes the app's answers for a test.
type appMiddleware func(w http.ResponseWriter, r *http.Request, next http.Handler)

func (s *system) appHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mw := s.appMW.Load(); mw != nil {
			(*mw)(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *system) setApp(tb testing.TB, mw appMiddleware) {
	s.appMW.Store(&mw)
	tb.Cleanup(func() { s.appMW.Store(nil) })
}

// rewriteLogins makes the app answer logins with write, given the body
// it would have answered.
func (s *system) rewriteLogins(tb testing.TB, write func(w http.ResponseWriter, body []byte)) {
	s.setApp(tb, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != "/api/auth/local" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		write(w, rec.Body.Bytes())
	})
}

// rawLogin logs in and reads what the client gets, a reset included.
func rawLogin(tb testing.TB, s *system, d *device, user string, hdr map[string]string) (status int, body []byte, readErr error) {
	tb.Helper()
	b := `{"identifier":"` + user + `","password":"` + passwords[user] + `"}`
	hr, err := http.NewRequest(http.MethodPost, s.proxyURL+"/api/auth/local", strings.NewReader(b))
	require.NoError(tb, err)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", d.ua)
	for k, v := range hdr {
		hr.Header.Set(k, v)
	}
	r, err := d.client.Do(hr)
	require.NoError(tb, err)
	defer r.Body.Close()
	body, readErr = io.ReadAll(r.Body)
	return r.StatusCode, body, readErr
}

func TestLoginsOnEnvoyDefaults(t *testing.T) {
	sys := startE2E(t, storetest.SQLiteURL)
	laptop := newDevice(t, "127.0.0.4", uaLaptop)

	t.Run("a gzip-capable client: the app is asked for a plain answer, the login registered", func(t *testing.T) {
		var mu sync.Mutex
		var seen []string
		sys.setApp(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.URL.Path == "/api/auth/local" {
				mu.Lock()
				seen = append(seen, r.Header.Get("Accept-Encoding"))
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
		for w := 0; w < workers; w++ {
			status, body, err := rawLogin(t, sys, laptop, "alice", map[string]string{"Accept-Encoding": "gzip, br"})
			require.NoError(t, err)
			require.Equal(t, 200, status, "%s", body)
			jwt := gjson.GetBytes(body, "jwt").String()
			require.NotEmpty(t, jwt)
			sys.currentSession(t, laptop, jwt) // registered: sessionsvc knows it
		}
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"", "", "", ""}[:workers], seen, "accept-encoding removed from login requests")
	})

	t.Run("refused at response time: headers, then a reset; the token never reaches the client", func(t *testing.T) {
		// Bob never logged in: blocking him ahead of it is an explicit set.
		r := sys.adminJSON(t, "POST", "/magic-sessionmanager/user/2/toggle-block", `{"blocked":true}`)
		require.Equal(t, 200, r.status, r.String())
		t.Cleanup(func() { sys.adminJSON(t, "POST", "/magic-sessionmanager/user/2/toggle-block", `{"blocked":false}`) })
		for w := 0; w < workers; w++ {
			status, body, err := rawLogin(t, sys, laptop, "bob", nil)
			assert.Equal(t, 200, status, "the app's status line went out before the answer was judged")
			assert.Error(t, err, "the stream is reset")
			assert.NotContains(t, string(body), "jwt")
		}
		assert.Positive(t, sys.counter("meshsession_logins_denied"))
	})

	t.Run("unreadable answers pass unregistered without a login policy, are refused with one", func(t *testing.T) {
		answers := map[string]func(w http.ResponseWriter, body []byte){
			"gzip": func(w http.ResponseWriter, body []byte) {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				_, _ = zw.Write(body)
				_ = zw.Close()
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(b.Bytes())
			},
			"html": func(w http.ResponseWriter, _ []byte) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>welcome back</html>"))
			},
			"no token": func(w http.ResponseWriter, _ []byte) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"token":"elsewhere"}`))
			},
		}
		for name, write := range answers {
			sys.rewriteLogins(t, write)
			before := sys.counter("meshsession_logins_unregistered")
			status, _, err := rawLogin(t, sys, laptop, "carol", nil)
			require.NoError(t, err, name)
			assert.Equal(t, 200, status, name)
			assert.Greater(t, sys.counter("meshsession_logins_unregistered"), before, name)
		}

		// A login policy lives in sessionsvc's enrichment: restart it with it.
		sys.stopSessionsvc()
		sys.hooks = wire.Hooks(func(string) string { return "" })
		sys.startSessionsvc()
		r := sys.adminJSON(t, "PUT", "/magic-sessionmanager/settings", `{"blockTor":true}`)
		require.Equal(t, 200, r.status, r.String())
		t.Cleanup(func() { sys.adminJSON(t, "PUT", "/magic-sessionmanager/settings", `{"blockTor":false}`) })
		// Wait until sessionsvc's policy has it (it refreshes every few
		// seconds), asking as the filter does; then one login per answer,
		// each from its own address and user (no lockout in the way).
		sys.eventually(t, "the login policy is active", func() (bool, string) {
			r := sys.internalJSON(t, "/internal/v1/logins/unreadable", `{"ip":"127.0.0.9","status":200,"why":"not_json"}`)
			return r.json("decision").String() == "deny", r.String()
		})
		i := 0
		for name, write := range answers {
			sys.rewriteLogins(t, write)
			d := newDevice(t, "127.0.1."+strconv.Itoa(10+i), uaLaptop)
			user := []string{"alice", "bob", "carol"}[i%3]
			i++
			status, body, err := rawLogin(t, sys, d, user, nil)
			assert.Error(t, err, "%s: refused after the headers: a reset (status %d)", name, status)
			assert.NotContains(t, string(body), "elsewhere", name)
			assert.NotContains(t, string(body), "jwt", name)
		}
	})
}

func TestLoginWhileSessionsvcDownIsDiscovered(t *testing.T) {
	onEachBackend(t, func(t *testing.T, sys *system, _ backend) {
		phone := newDevice(t, "127.0.0.5", uaPhone)
		// Every worker has its first state before sessionsvc goes away (a
		// token-bearing request is held until it has: under fail_closed a
		// worker that never synced refuses, as it should).
		laptop := newDevice(t, "127.0.0.6", uaLaptop)
		_, warm, err := rawLogin(t, sys, laptop, "bob", nil)
		require.NoError(t, err)
		sys.everyWorker(t, laptop, gjson.GetBytes(warm, "jwt").String(), "/api/articles", "first state", status(200))

		sys.stopSessionsvc()
		status, body, err := rawLogin(t, sys, phone, "alice", nil)
		require.NoError(t, err)
		require.Equal(t, 200, status, "login_unavailable_policy allow: %s", body)
		jwt := gjson.GetBytes(body, "jwt").String()
		require.NotEmpty(t, jwt)
		for w := 0; w < workers; w++ {
			r := sys.get(t, phone, jwt, "/api/articles", w)
			require.Equal(t, 200, r.status, r.String())
		}

		sys.startSessionsvc()
		restarted := time.Now()
		var sid string
		sys.eventually(t, "the token used since is listed, discovered", func() (bool, string) {
			_ = sys.get(t, phone, jwt, "/api/articles", -1)
			for _, s := range sys.userSessions(t, "1") {
				if s.Get("discovered").Bool() && s.Get("isActive").Bool() {
					sid = s.Get("sessionId").String()
					return s.Get("userAgent").String() == uaPhone && s.Get("ipAddress").String() == "127.0.0.5", s.Raw
				}
			}
			return false, "not listed"
		})
		// Within one last_seen_interval after sessionsvc came back (plus a
		// sync and a flush; slack for a loaded machine).
		assert.Less(t, time.Since(restarted), lastSeenInterval+5*time.Second)
		assert.Equal(t, sid, sys.currentSession(t, phone, jwt), "the user API knows it as the current session")

		r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, phone, jwt, "/api/articles", "discovered session terminated", refused(401, "manual"))
	})
}

// internalJSON calls sessionsvc's internal API as the filter does.
func (s *system) internalJSON(tb testing.TB, path, body string) resp {
	tb.Helper()
	key, _ := s.plugin["internal_key"].(string)
	return svcClient().do(tb, req{method: http.MethodPost, url: s.svcURL() + path, body: json.RawMessage(body),
		headers: map[string]string{"x-meshsession-key": key}, worker: -1})
}
