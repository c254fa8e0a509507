package devproxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/meshsession/meshsession/e2e/devproxy"
	"github.com/meshsession/meshsession/e2e/envoyconfig"
	"github.com/meshsession/meshsession/internal/testenv"
)

// The proxy's mechanics are tested with the host's ABI-level test guest
// (e2e/host/testdata/guest): its x-cmd request header makes it rewrite
// headers, answer locally, hold the request on a callout or trap. The real
// plugin runs in the e2e tests (e2e/e2etest).

func guestWasm(t *testing.T) ([]byte, wazero.CompilationCache) {
	return testenv.BuildWasm(t, "../host/testdata/guest"), testenv.CompilationCache()
}

// seen is what the upstream received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (s *seen) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.reqs, "the upstream was not reached")
	return s.reqs[len(s.reqs)-1], s.body[len(s.body)-1]
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func upstream(t *testing.T) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(b))
		s.mu.Unlock()
		switch r.URL.Path {
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
			return
		case "/big":
			_, _ = w.Write(make([]byte, 2048))
			return
		}
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("Connection", "x-secret")
		w.Header().Set("X-Secret", "hop")
		fmt.Fprintf(w, "upstream saw %s %s", r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

// envoyConfig loads the repository's envoy.yaml with both clusters pointed
// at addr and the given failure policy.
func envoyConfig(t *testing.T, addr, policy, pluginConfig string) *envoyconfig.Config {
	t.Helper()
	cfg, err := envoyconfig.Load("../../envoy.yaml")
	require.NoError(t, err)
	changed, err := devproxy.RemapHosts(cfg, map[string]string{"demoapp": addr, "sessionsvc": addr})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"app", "sessionsvc"}, changed)
	cfg.Wasm.FailurePolicy = policy
	cfg.Wasm.Configuration = pluginConfig
	return cfg
}

type started struct {
	p    *devproxy.Proxy
	url  string
	stop func()
}

func start(t *testing.T, cfg *envoyconfig.Config, mod func(*devproxy.Options)) *started {
	t.Helper()
	bin, cache := guestWasm(t)
	opts := devproxy.Options{Envoy: cfg, Module: bin, Workers: 1, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		CompilationCache: cache, AllowWorkerPin: true, MaxRequestBody: 1024, MaxResponseBody: 1024}
	if mod != nil {
		mod(&opts)
	}
	p, err := devproxy.New(context.Background(), opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{p: p, url: "http://" + p.Addr().String()}
	var serveErr error
	finished := make(chan struct{})
	go func() { serveErr = p.Serve(ctx); close(finished) }()
	s.stop = func() {
		cancel()
		select {
		case <-finished:
			require.NoError(t, serveErr)
		case <-time.After(15 * time.Second):
			t.Fatal("Serve did not return after cancel")
		}
	}
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return s
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, body string, hdr map[string]string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestProxyPassesThroughAndAppliesMutations(t *testing.T) {
	up, seen := upstream(t)
	s := start(t, envoyConfig(t, up.Listener.Addr().String(), envoyconfig.FailClosed, "ok"), nil)

	t.Run("plain request reaches the routed cluster, response runs through the filter", func(t *testing.T) {
		r := do(t, "GET", s.url+"/api/things?x=1", "", map[string]string{
			"Connection": "x-drop", "X-Drop": "1", "X-Forwarded-For": "198.51.100.7", devproxy.WorkerHeader: "0"})
		require.Equal(t, 200, r.status, r.body)
		assert.Equal(t, "upstream saw GET /api/things?x=1", r.body)
		assert.Equal(t, "yes", r.header.Get("X-Upstream"))
		assert.Equal(t, "0:200", r.header.Get("X-Seen-Status"), "response headers went through the filter")
		assert.Empty(t, r.header.Get("X-Secret"), "hop-by-hop header named by Connection is dropped")
		req, _ := seen.last(t)
		assert.Empty(t, req.Header.Get("X-Drop"), "hop-by-hop header named by Connection is dropped")
		assert.Empty(t, req.Header.Get(devproxy.WorkerHeader), "the pin header never reaches the upstream")
		assert.Equal(t, "198.51.100.7,127.0.0.1", req.Header.Get("X-Forwarded-For"), "use_remote_address appends the peer")
		assert.Equal(t, "http", req.Header.Get("X-Forwarded-Proto"))
		assert.NotEmpty(t, req.Header.Get("X-Request-Id"))
	})
	t.Run("header mutations of the filter are forwarded", func(t *testing.T) {
		r := do(t, "GET", s.url+"/orig", "", map[string]string{"x-cmd": "rewrite"})
		require.Equal(t, 200, r.status, r.body)
		assert.Equal(t, "upstream saw GET /rewritten", r.body)
		req, _ := seen.last(t)
		assert.Equal(t, "2", req.Header.Get("X-New"))
		assert.Empty(t, req.Header.Get("X-Cmd"), "set_header_map_pairs replaced the whole map")
	})
	t.Run("body mutations of the filter are forwarded", func(t *testing.T) {
		r := do(t, "POST", s.url+"/api/body", "replace me", nil)
		require.Equal(t, 200, r.status, r.body)
		req, body := seen.last(t)
		assert.Equal(t, "new", body)
		assert.Equal(t, "0", req.Header.Get("X-Body-Status"))
	})
	t.Run("local response replaces the request", func(t *testing.T) {
		n := seen.count()
		r := do(t, "GET", s.url+"/api/x", "", map[string]string{"x-cmd": "local:403"})
		assert.Equal(t, 403, r.status)
		assert.Equal(t, "denied", r.body)
		assert.Equal(t, "test", r.header.Get("X-Why"))
		assert.Equal(t, "text/plain", r.header.Get("Content-Type"), "Envoy's local reply default")
		assert.Equal(t, n, seen.count(), "upstream not reached")
	})
	t.Run("a held request resumes after the callout", func(t *testing.T) {
		r := do(t, "GET", s.url+"/held", "", map[string]string{"x-cmd": "callout:sessionsvc:/callout"})
		require.Equal(t, 200, r.status, r.body)
		assert.Equal(t, "upstream saw GET /held", r.body)
	})
	t.Run("a callout answer can answer the held request locally", func(t *testing.T) {
		r := do(t, "GET", s.url+"/held", "", map[string]string{"x-cmd": "callout:sessionsvc:/teapot"})
		assert.Equal(t, 418, r.status)
		assert.Equal(t, "teapot", r.body)
	})
	t.Run("request body over the limit is 413", func(t *testing.T) {
		n := seen.count()
		r := do(t, "POST", s.url+"/api/body", strings.Repeat("a", 1025), nil)
		assert.Equal(t, 413, r.status)
		assert.Equal(t, n, seen.count())
	})
	t.Run("response body over the limit is 500", func(t *testing.T) {
		r := do(t, "GET", s.url+"/big", "", nil)
		assert.Equal(t, 500, r.status)
		assert.Contains(t, r.body, "larger than 1024 bytes")
	})
	t.Run("worker pin out of range is 400", func(t *testing.T) {
		r := do(t, "GET", s.url+"/x", "", map[string]string{devproxy.WorkerHeader: "7"})
		assert.Equal(t, 400, r.status)
		assert.Contains(t, r.body, "want a worker index in [0,1)")
	})
	t.Run("admin interface", func(t *testing.T) {
		r := do(t, "GET", s.url+"/m", "", map[string]string{"x-cmd": "metric"})
		require.Equal(t, 200, r.status)
		admin := "http://" + s.p.AdminAddr().String()
		st := do(t, "GET", admin+"/stats", "", nil)
		require.Equal(t, 200, st.status)
		// The guest's counter: +2, then -1 (refused: counters never decrease).
		assert.Contains(t, st.body, "wasmcustom.guest_requests: 2\n")
		assert.Contains(t, st.body, "wasmcustom.guest_latency: count=1 sum=42\n")
		assert.Regexp(t, `http\.ingress_http\.devproxy\.requests: \d+`, st.body)
		pr := do(t, "GET", admin+"/stats/prometheus", "", nil)
		assert.Contains(t, pr.body, "# TYPE envoy_wasmcustom_guest_requests counter\nenvoy_wasmcustom_guest_requests 2\n")
		assert.Equal(t, "LIVE\n", do(t, "GET", admin+"/ready", "", nil).body)
		assert.Contains(t, do(t, "GET", admin+"/workers", "", nil).body, `"healthy":true`)
	})
	s.stop()
}

func TestProxyUpstreamErrors(t *testing.T) {
	up, _ := upstream(t)
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())

	cfg := envoyConfig(t, up.Listener.Addr().String(), envoyconfig.FailClosed, "ok")
	require.NoError(t, cfg.SetClusterAddress("app", dead))
	cfg.Routes = append([]envoyconfig.Route{{Prefix: "/only/", Cluster: "sessionsvc", Timeout: time.Second}},
		envoyconfig.Route{Prefix: "/app/", Cluster: "app", Timeout: time.Second})
	s := start(t, cfg, nil)

	r := do(t, "GET", s.url+"/app/x", "", nil)
	assert.Equal(t, 503, r.status)
	assert.Contains(t, r.body, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
	assert.Contains(t, r.body, `cluster "app" at `+dead)
	assert.Equal(t, "0:503", r.header.Get("X-Seen-Status"), "the router's local reply runs through the filter, as in Envoy")

	r = do(t, "GET", s.url+"/nowhere", "", nil)
	assert.Equal(t, 404, r.status, "no route matches")

	r = do(t, "GET", s.url+"/only/x", "", nil)
	assert.Equal(t, 200, r.status, "first matching route")
}

func TestProxyFailurePolicy(t *testing.T) {
	up, seen := upstream(t)
	for _, tc := range []struct {
		policy     string
		wantStatus int
	}{
		{envoyconfig.FailClosed, 503},
		{envoyconfig.FailOpen, 200},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			s := start(t, envoyConfig(t, up.Listener.Addr().String(), tc.policy, "ok"), func(o *devproxy.Options) { o.Workers = 2 })
			r := do(t, "GET", s.url+"/trap", "", map[string]string{"x-cmd": "trap", devproxy.WorkerHeader: "0"})
			assert.Equal(t, tc.wantStatus, r.status, r.body)
			require.Error(t, s.p.Host().Failed(0))
			n := seen.count()
			// The failed VM keeps applying the policy; the other worker works.
			r = do(t, "GET", s.url+"/after", "", map[string]string{devproxy.WorkerHeader: "0"})
			assert.Equal(t, tc.wantStatus, r.status, r.body)
			if tc.wantStatus == 503 {
				assert.Contains(t, r.body, "failure_policy FAIL_CLOSED")
				assert.Equal(t, n, seen.count())
			} else {
				assert.Equal(t, "upstream saw GET /after", r.body)
				assert.Empty(t, r.header.Get("X-Seen-Status"), "FAIL_OPEN bypasses the filter")
			}
			r = do(t, "GET", s.url+"/other", "", map[string]string{devproxy.WorkerHeader: "1"})
			assert.Equal(t, 200, r.status)
			assert.Equal(t, "0:200", r.header.Get("X-Seen-Status"))
			s.stop()
		})
	}
}

func TestProxyStartupErrors(t *testing.T) {
	up, _ := upstream(t)
	bin, cache := guestWasm(t)
	base := func() devproxy.Options {
		return devproxy.Options{Envoy: envoyConfig(t, up.Listener.Addr().String(), envoyconfig.FailClosed, "ok"),
			Module: bin, Workers: 1, Listen: "127.0.0.1:0", Admin: devproxy.AdminOff, CompilationCache: cache}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()

	for _, tc := range []struct {
		name string
		mod  func(*devproxy.Options)
		want []string
	}{
		{"port in use", func(o *devproxy.Options) { o.Listen = busy.Addr().String() },
			[]string{`listener "ingress"`, "address already in use"}},
		{"admin port in use", func(o *devproxy.Options) { o.Admin = busy.Addr().String() },
			[]string{"admin listener", "address already in use"}},
		{"missing plugin.wasm", func(o *devproxy.Options) { o.Module = nil; o.ModulePath = filepath.Join(t.TempDir(), "plugin.wasm") },
			[]string{"does not exist", "make plugin"}},
		{"not wasm", func(o *devproxy.Options) {
			o.Module = nil
			o.ModulePath = filepath.Join(t.TempDir(), "x.wasm")
			require.NoError(t, os.WriteFile(o.ModulePath, []byte("hello world"), 0o600))
		}, []string{"not a WebAssembly module"}},
		{"plugin refuses its configuration", func(o *devproxy.Options) { o.Envoy.Wasm.Configuration = "bad config" },
			[]string{"start plugin", "proxy_on_configure", `field "bad config" is wrong`}},
		{"unknown failure policy", func(o *devproxy.Options) { o.Envoy.Wasm.FailurePolicy = "FAIL_SOMETIMES" },
			[]string{"failure_policy", "FAIL_SOMETIMES"}},
		{"negative workers", func(o *devproxy.Options) { o.Workers = -1 }, []string{"workers must be positive"}},
		{"no envoy config", func(o *devproxy.Options) { o.Envoy = nil }, []string{"no envoy configuration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mod(&o)
			p, err := devproxy.New(context.Background(), o)
			require.Error(t, err)
			require.Nil(t, p)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	// A failed start released the port.
	o := base()
	o.Listen = "127.0.0.1:0"
	p, err := devproxy.New(context.Background(), o)
	require.NoError(t, err)
	addr := p.Addr().String()
	require.NoError(t, p.Close())
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "Close released the listener")
	require.NoError(t, ln.Close())
}

func TestProxyShutdownDrainsInFlight(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "finished")
	}))
	defer slow.Close()
	s := start(t, envoyConfig(t, slow.Listener.Addr().String(), envoyconfig.FailClosed, "ok"), nil)
	got := make(chan result, 1)
	go func() { got <- do(t, "GET", s.url+"/slow", "", nil) }()
	<-arrived // the request reached the upstream
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	// Shutdown has begun once the listener refuses connections.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", s.p.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second, time.Millisecond, "listener still open after stop")
	select {
	case <-stopped:
		t.Fatal("Serve returned with a request in flight")
	default:
	}
	close(release)
	r := <-got
	assert.Equal(t, 200, r.status)
	assert.Equal(t, "finished", r.body)
	<-stopped
	_, err := http.Get(s.url + "/after")
	require.Error(t, err, "listener closed")
}

func TestRemapHosts(t *testing.T) {
	cfg, err := envoyconfig.Load("../../envoy.yaml")
	require.NoError(t, err)
	changed, err := devproxy.RemapHosts(cfg, map[string]string{"demoapp": "127.0.0.1:3001"})
	require.NoError(t, err)
	assert.Equal(t, []string{"app"}, changed)
	assert.Equal(t, "127.0.0.1:3001", cfg.Clusters["app"].Address.String())
	assert.Equal(t, "sessionsvc:8081", cfg.Clusters["sessionsvc"].Address.String())
	_, err = devproxy.RemapHosts(cfg, map[string]string{"sessionsvc": "nonsense"})
	require.ErrorContains(t, err, `remap cluster "sessionsvc"`)
}

func TestProxyFilterHoldingTooLongIs504(t *testing.T) {
	up, seen := upstream(t)
	s := start(t, envoyConfig(t, up.Listener.Addr().String(), envoyconfig.FailClosed, "ok"),
		func(o *devproxy.Options) { o.StreamTimeout = 300 * time.Millisecond })
	r := do(t, "GET", s.url+"/held", "", map[string]string{"x-cmd": "pause"})
	assert.Equal(t, 504, r.status)
	assert.Contains(t, r.body, "held the request for more than 300ms")
	assert.Equal(t, 0, seen.count())
	s.stop()
}

func TestProxyIgnoresWorkerPinUnlessAllowed(t *testing.T) {
	up, seen := upstream(t)
	s := start(t, envoyConfig(t, up.Listener.Addr().String(), envoyconfig.FailClosed, "ok"),
		func(o *devproxy.Options) { o.AllowWorkerPin = false })
	r := do(t, "GET", s.url+"/x", "", map[string]string{devproxy.WorkerHeader: "7"})
	assert.Equal(t, 200, r.status, r.body)
	req, _ := seen.last(t)
	assert.Empty(t, req.Header.Get(devproxy.WorkerHeader), "stripped even when not honoured")
	s.stop()
}
