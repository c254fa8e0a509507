package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

const testAdminToken = "test-admin-token-0123456789abcdef"

// testEnv is a real sessionsvc (temp SQLite file) with the dashboard mounted.
type testEnv struct {
	t      testing.TB
	dbPath string
	svc    *service.Service
	srv    *httptest.Server
	st     store.Store
}

// newService builds a sessionsvc with the dashboard mounted on a temp SQLite file.
func newService(t testing.TB, dbURL string, extra map[string]string) *service.Service {
	t.Helper()
	return newServiceHooks(t, dbURL, extra, service.Hooks{Mounts: Mounts})
}

// newServiceHooks is newService with hooks (Mounts: the dashboard).
func newServiceHooks(t testing.TB, dbURL string, extra map[string]string, hooks service.Hooks) *service.Service {
	t.Helper()
	key, err := secrets.GenerateKey()
	require.NoError(t, err)
	env := map[string]string{
		"DATABASE_URL":             dbURL,
		"ADMIN_TOKEN":              testAdminToken,
		"MESHSESSION_INTERNAL_KEY": "test-internal-key-0123456789",
		"SESSION_ENCRYPTION_KEY":   key,
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, _, _, err := service.ParseConfig("sessionsvc", nil, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	svc, err := service.New(context.Background(), cfg, false, hooks, nil, io.Discard)
	require.NoError(t, err)
	return svc
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	return newTestEnvURL(t, "sqlite://"+filepath.Join(t.TempDir(), "meshsession.db"))
}

// forBackends runs a test on SQLite and on PostgreSQL (skipped when
// PostgreSQL is unreachable, failed under CI=true / MESHSESSION_REQUIRE_POSTGRES=1).
func forBackends(t *testing.T, fn func(t *testing.T, e *testEnv)) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) { fn(t, newTestEnvURL(t, be.URL(t))) })
	}
}

func newTestEnvURL(t testing.TB, dbURL string) *testEnv {
	t.Helper()
	return newTestEnvHooks(t, dbURL, service.Hooks{Mounts: Mounts})
}

// newTestEnvHooks is newTestEnvURL with hooks (include Mounts for the dashboard).
func newTestEnvHooks(t testing.TB, dbURL string, hooks service.Hooks) *testEnv {
	t.Helper()
	dbPath := strings.TrimPrefix(dbURL, "sqlite://")
	svc := newServiceHooks(t, dbURL, nil, hooks)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = svc.Close()
	})
	return &testEnv{t: t, dbPath: dbPath, svc: svc, srv: srv, st: svc.Store}
}

type seedOpt struct {
	user, ip, ua, country, browser, device, os string
	cc                                         string // ISO country code
	login, last                                time.Time
	score                                      int
	reasons                                    []string
}

func (e *testEnv) seed(o seedOpt) string {
	e.t.Helper()
	now := time.Now().UTC()
	if o.login.IsZero() {
		o.login = now.Add(-time.Hour)
	}
	if o.last.IsZero() {
		o.last = now.Add(-time.Minute)
	}
	if o.score == 0 {
		o.score = 90
	}
	id := store.NewSessionID()
	s := &store.Session{ID: id, UserID: o.user, IP: o.ip, UserAgent: o.ua, LoginTime: o.login, LastActive: o.last, Active: true,
		DeviceType: o.device, BrowserName: o.browser, OSName: o.os, SecurityScore: o.score, ScoreReasons: o.reasons,
		ExpiresAt: now.Add(time.Hour), Route: "/api/auth/local"}
	if o.country != "" {
		s.Geo = &store.GeoLocation{Country: o.country, CountryCode: o.cc, City: "Somewhere"}
	}
	require.NoError(e.t, e.st.CreateSession(context.Background(), s,
		[]store.SessionKey{{Key: "sid:" + id, Kind: store.KeySession, ExpiresAt: now.Add(time.Hour)}}, nil))
	return id
}

// client is a browser-like HTTP client with a cookie jar.
type client struct {
	e    *testEnv
	c    *http.Client
	csrf string
}

// register posts a login's registration to the internal API, as the proxy
// does (the names in it are stored sealed).
func (e *testEnv) register(t testing.TB, reg protocol.RegisterRequest) {
	t.Helper()
	e.internal(t, protocol.PathSessions, reg)
}

// internal posts body to the internal API path, as the proxy does,
// requires 200 and gives the answer's JSON object.
func (e *testEnv) internal(t testing.TB, path string, v any) map[string]any {
	t.Helper()
	body, err := json.Marshal(v)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderKey, "test-internal-key-0123456789")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode, string(raw))
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func (e *testEnv) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// admin is a client signed in with the test admin token.
func (e *testEnv) admin() *client {
	c := e.client()
	require.Equal(e.t, 200, c.login(testAdminToken).status)
	return c
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), string(a.body))
	return m
}

// data GETs path, requires 200 and gives the answer's data object.
func (c *client) data(path string) map[string]any {
	c.e.t.Helper()
	a := c.do("GET", path, nil, nil)
	require.Equal(c.e.t, 200, a.status, string(a.body))
	return a.json(c.e.t)["data"].(map[string]any)
}

func (c *client) do(method, path string, body any, hdr map[string]string) answer {
	c.e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.e.t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, rd)
	require.NoError(c.e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.c.Do(req)
	require.NoError(c.e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.e.t, err)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// login signs in and remembers the CSRF token.
func (c *client) login(tok string) answer {
	a := c.do("POST", "/dashboard/api/login", map[string]string{"token": tok}, nil)
	if a.status == http.StatusOK {
		c.csrf = fmt.Sprint(a.json(c.e.t)["csrf"])
	}
	return a
}

// post sends a state change with the CSRF token.
func (c *client) post(method, path string, body any) answer {
	return c.do(method, path, body, map[string]string{csrfHeader: c.csrf})
}

func hashForTest(tok string) string { return server.HashAdminToken(tok) }
