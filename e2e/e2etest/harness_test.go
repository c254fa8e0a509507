package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/e2e/demoapp"
	"github.com/meshsession/meshsession/e2e/devproxy"
	"github.com/meshsession/meshsession/e2e/envoyconfig"
	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

const (
	workers    = 4
	adminToken = "e2e-admin-token-0123456789abcdef"
	// waitFor bounds every "eventually" (a loaded 2-core machine).
	waitFor = 15 * time.Second
)

// ---- plugin.wasm, compiled once per test binary ----

func pluginWasm(tb testing.TB) ([]byte, wazero.CompilationCache) {
	return testenv.PluginWasm(tb), testenv.CompilationCache()
}

// ---- logs, shown when a test fails ----

// logBuf keeps the system's logs (their tail is shown when a test fails).
type logBuf struct{ testenv.SyncBuffer }

func (l *logBuf) tail(n int) string { return l.Tail(n) }

// ---- the system: sessionsvc + demo app + dev proxy ----

type system struct {
	tb       testing.TB
	dbURL    string
	plugin   map[string]any
	logs     *logBuf
	log      *slog.Logger
	app      *httptest.Server
	demo     *demoapp.App
	proxy    *devproxy.Proxy
	proxyURL string

	appMW atomic.Pointer[appMiddleware] // set by tests to change the app's answers (login_envoy_test.go)
	hooks service.Hooks                 // sessionsvc's hooks at its next start (default: no enrichment)

	svcAddr string // fixed at the first start: restarts reuse it
	svc     *service.Service
	svcStop context.CancelFunc
	svcDone chan error
}

// backend is a database sessionsvc runs on.
type backend struct {
	name string
	url  func(testing.TB) string // a new, empty database
}

var backends = []backend{{"sqlite", storetest.SQLiteURL}, {"postgres", storetest.PostgresURL}}

// onEachBackend runs test once per backend, as a subtest named for it, on
// a system of its own (startE2E).
func onEachBackend(t *testing.T, test func(t *testing.T, sys *system, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, startE2E(t, b.url), b) })
	}
}

// startE2E starts a system on a new database of dbURL's kind with the
// tests' plugin overrides (e2eOverrides). Without plugin.wasm the test
// skips (or fails, see internal/testenv) before any database is made.
func startE2E(t *testing.T, dbURL func(testing.TB) string) *system {
	t.Helper()
	pluginWasm(t)
	return startSystem(t, dbURL(t), e2eOverrides())
}

func loadEnvoy(tb testing.TB) *envoyconfig.Config {
	tb.Helper()
	env, err := envoyconfig.Load(filepath.Join("..", "..", "envoy.yaml"))
	require.NoError(tb, err)
	return env
}

// pluginConfig is envoy.yaml's plugin configuration with overrides.
func pluginConfig(tb testing.TB, env *envoyconfig.Config, overrides map[string]any) map[string]any {
	tb.Helper()
	var cfg map[string]any
	require.NoError(tb, json.Unmarshal([]byte(env.Wasm.Configuration), &cfg))
	for k, v := range overrides {
		cfg[k] = v
	}
	return cfg
}

// startSystem starts sessionsvc on dbURL, the demo app and the dev proxy
// (4 workers, worker pinning on) with envoy.yaml's plugin configuration
// plus overrides. Everything stops when the test ends.
func startSystem(tb testing.TB, dbURL string, overrides map[string]any) *system {
	tb.Helper()
	pluginWasm(tb) // a missing plugin.wasm skips before anything starts
	s := &system{tb: tb, dbURL: dbURL, logs: &logBuf{testenv.SyncBuffer{Max: 4 << 20}}}
	var out io.Writer = s.logs
	if path := os.Getenv("E2E_LOG_FILE"); path != "" { // every line, for debugging
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = f.Close() })
		out = io.MultiWriter(s.logs, f)
	}
	s.log = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tb.Cleanup(func() {
		if tb.Failed() {
			n := 150
			if v, err := strconv.Atoi(os.Getenv("E2E_LOG_LINES")); err == nil {
				n = v
			}
			tb.Logf("last log lines:\n%s", s.logs.tail(n))
		}
	})
	s.plugin = pluginConfig(tb, loadEnvoy(tb), overrides)

	s.startSessionsvc()
	tb.Cleanup(func() {
		if s.svcStop != nil {
			s.stopSessionsvc()
		}
	})
	secret, _ := s.plugin["verify"].(map[string]any)["secret"].(string)
	s.demo = demoapp.New(demoapp.Config{Secret: secret, SIDClaim: true,
		Logger: s.log.With("component", "demoapp")})
	s.app = httptest.NewServer(s.appHandler(s.demo))
	tb.Cleanup(s.app.Close)

	s.proxy = s.startProxy(tb, "devproxy")
	s.proxyURL = "http://" + s.proxy.Addr().String()
	return s
}

// startProxy starts a dev proxy (a freshly started Envoy: its own workers
// and shared data; admin off, worker pinning on) with envoy.yaml and the
// system's plugin configuration, in front of the system's app and
// sessionsvc. It logs as component and stops when the test ends.
func (s *system) startProxy(tb testing.TB, component string) *devproxy.Proxy {
	tb.Helper()
	module, cache := pluginWasm(tb)
	env := loadEnvoy(tb)
	cfgJSON, err := json.Marshal(s.plugin)
	require.NoError(tb, err)
	env.Wasm.Configuration = string(cfgJSON)
	_, err = devproxy.RemapHosts(env, map[string]string{"demoapp": s.app.Listener.Addr().String(), "sessionsvc": s.svcAddr})
	require.NoError(tb, err)
	p, err := devproxy.New(context.Background(), devproxy.Options{
		Envoy: env, Module: module, CompilationCache: cache, Workers: workers,
		Listen: "127.0.0.1:0", Admin: devproxy.AdminOff, AllowWorkerPin: true,
		Logger: s.log.With("component", component),
	})
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(tb, err, component)
		case <-time.After(30 * time.Second):
			tb.Errorf("%s did not stop", component)
		}
	})
	return p
}

// startSessionsvc starts sessionsvc in process (again on the same address
// and database after stopSessionsvc).
func (s *system) startSessionsvc() {
	tb := s.tb
	tb.Helper()
	secret, _ := s.plugin["verify"].(map[string]any)["secret"].(string)
	env := map[string]string{
		"DATABASE_URL":             s.dbURL,
		"JWT_SECRET":               secret,
		"MESHSESSION_INTERNAL_KEY": s.plugin["internal_key"].(string),
		"ADMIN_TOKEN":              adminToken,
		"ACTIVITY_FLUSH_INTERVAL":  "0s",
		"SHUTDOWN_TIMEOUT":         "5s",
	}
	cfg, endIdleSet, _, err := service.ParseConfig("sessionsvc", nil, func(k string) string { return env[k] }, io.Discard)
	require.NoError(tb, err)
	svc, err := service.New(context.Background(), cfg, endIdleSet, s.hooks, s.log.With("component", "sessionsvc"), io.Discard)
	require.NoError(tb, err)
	addr := s.svcAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	deadline := time.Now().Add(waitFor)
	for {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		_ = svc.Close()
		require.NoError(tb, err, "listen for sessionsvc")
	}
	s.svcAddr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s.svc, s.svcStop, s.svcDone = svc, cancel, make(chan error, 1)
	go func() { s.svcDone <- svc.Serve(ctx, ln) }()
}

func (s *system) stopSessionsvc() {
	s.tb.Helper()
	s.svcStop()
	s.svcStop = nil
	select {
	case err := <-s.svcDone:
		require.NoError(s.tb, err, "sessionsvc stopped with an error")
	case <-time.After(30 * time.Second):
		s.tb.Fatal("sessionsvc did not stop")
	}
}

func (s *system) svcURL() string { return "http://" + s.svcAddr }

// counter is a plugin metric's value (summed over workers by the host).
func (s *system) counter(name string) int64 {
	m, ok := s.proxy.Host().Metrics().Get(name)
	if !ok {
		return 0
	}
	return m.Value
}

// ---- clients ----

// device is a client with its own source address and user agent.
type device struct {
	ip, ua string
	client *http.Client
}

func newDevice(tb testing.TB, ip, ua string) *device {
	tb.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8}
	tb.Cleanup(tr.CloseIdleConnections)
	return &device{ip: ip, ua: ua, client: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(path string) gjson.Result { return gjson.GetBytes(r.body, path) }
func (r resp) reason() string                { return r.header.Get("X-Session-Terminated-Reason") }
func (r resp) String() string {
	return fmt.Sprintf("%d %s reason=%q", r.status, bytes.TrimSpace(r.body), r.reason())
}

// req is one request; worker < 0: round-robin.
type req struct {
	method, url, token string
	body               any
	worker             int
	headers            map[string]string
}

func (d *device) do(tb testing.TB, q req) resp {
	tb.Helper()
	var rd io.Reader
	if q.body != nil {
		b, err := json.Marshal(q.body)
		require.NoError(tb, err)
		rd = bytes.NewReader(b)
	}
	if q.method == "" {
		q.method = http.MethodGet
	}
	hr, err := http.NewRequest(q.method, q.url, rd)
	require.NoError(tb, err)
	hr.Header.Set("User-Agent", d.ua)
	if q.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if q.token != "" {
		hr.Header.Set("Authorization", "Bearer "+q.token)
	}
	if q.worker >= 0 {
		hr.Header.Set(devproxy.WorkerHeader, strconv.Itoa(q.worker))
	}
	for k, v := range q.headers {
		hr.Header.Set(k, v)
	}
	r, err := d.client.Do(hr)
	require.NoError(tb, err, "%s %s", q.method, q.url)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(tb, err)
	return resp{status: r.StatusCode, header: r.Header, body: b}
}

// tokens are what a login or refresh answered.
type tokens struct{ jwt, refresh string }

var passwords = map[string]string{"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}

func (s *system) login(tb testing.TB, d *device, user string) tokens {
	tb.Helper()
	r := d.do(tb, req{method: "POST", url: s.proxyURL + "/api/auth/local", worker: -1,
		body: map[string]string{"identifier": user, "password": passwords[user]}})
	require.Equal(tb, http.StatusOK, r.status, "login %s: %s", user, r)
	t := tokens{jwt: r.json("jwt").String(), refresh: r.json("refreshToken").String()}
	require.NotEmpty(tb, t.jwt)
	require.NotEmpty(tb, t.refresh)
	return t
}

func (s *system) refresh(tb testing.TB, d *device, refreshToken string) resp {
	tb.Helper()
	return d.do(tb, req{method: "POST", url: s.proxyURL + "/api/auth/refresh", worker: -1,
		body: map[string]string{"refreshToken": refreshToken}})
}

// get calls a path through the proxy on one worker (-1: round-robin).
func (s *system) get(tb testing.TB, d *device, token, path string, worker int) resp {
	tb.Helper()
	return d.do(tb, req{url: s.proxyURL + path, token: token, worker: worker})
}

// currentSession is sessionsvc's id of the token's session (user API
// through the proxy).
func (s *system) currentSession(tb testing.TB, d *device, token string) string {
	tb.Helper()
	var id string
	s.eventually(tb, "current session registered", func() (bool, string) {
		r := s.get(tb, d, token, "/api/magic-sessionmanager/current-session", -1)
		id = r.json("data.sessionId").String()
		return r.status == 200 && id != "", r.String()
	})
	return id
}

// admin calls sessionsvc's admin API directly (it is not on the proxy's
// listener).
func (s *system) admin(tb testing.TB, method, path string) resp {
	tb.Helper()
	return svcClient().do(tb, req{method: method, url: s.svcURL() + path, token: adminToken, worker: -1})
}

// adminJSON calls the admin API with a JSON body.
func (s *system) adminJSON(tb testing.TB, method, path, body string) resp {
	tb.Helper()
	return svcClient().do(tb, req{method: method, url: s.svcURL() + path, token: adminToken, body: json.RawMessage(body), worker: -1})
}

// svcClient calls sessionsvc directly (not through the proxy).
func svcClient() *device { return &device{ua: "e2e-admin", client: http.DefaultClient} }

// userSessions lists a user's sessions (admin API), newest first.
func (s *system) userSessions(tb testing.TB, userID string) []gjson.Result {
	tb.Helper()
	r := s.admin(tb, "GET", "/magic-sessionmanager/user/"+userID+"/sessions")
	require.Equal(tb, 200, r.status, r.String())
	return r.json("data").Array()
}

func (s *system) session(tb testing.TB, userID, sessionID string) gjson.Result {
	tb.Helper()
	for _, x := range s.userSessions(tb, userID) {
		if x.Get("sessionId").String() == sessionID {
			return x
		}
	}
	tb.Fatalf("session %s of user %s not listed", sessionID, userID)
	return gjson.Result{}
}

// eventually polls cond until it holds (bounded by waitFor).
func (s *system) eventually(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached within %s; last: %s", what, waitFor, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// everyWorker waits until every worker answers path for token as want
// says, and returns each worker's answer.
func (s *system) everyWorker(tb testing.TB, d *device, token, path, what string, want func(resp) bool) []resp {
	tb.Helper()
	out := make([]resp, workers)
	for w := 0; w < workers; w++ {
		s.eventually(tb, fmt.Sprintf("%s on worker %d", what, w), func() (bool, string) {
			out[w] = s.get(tb, d, token, path, w)
			return want(out[w]), out[w].String()
		})
	}
	return out
}

func status(code int) func(resp) bool { return func(r resp) bool { return r.status == code } }

func refused(code int, reason string) func(resp) bool {
	return func(r resp) bool { return r.status == code && r.reason() == reason }
}
