package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/demoapp"
	"github.com/meshsession/meshsession/e2e/envoyconfig"
	"github.com/meshsession/meshsession/internal/testenv"
)

const envoyYAML = "../../../envoy.yaml"

// syncBuffer is a goroutine-safe output.
type syncBuffer = testenv.SyncBuffer

type running struct {
	ready  Ready
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned (err is then set)
	err    error
}

// start runs the command in process and waits until it is ready.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan struct{})}
	readyc := make(chan Ready, 1)
	go func() {
		r.err = run(ctx, args, func(string) string { return "" }, r.stdout, r.stderr, func(x Ready) { readyc <- x })
		close(r.done)
	}()
	select {
	case r.ready = <-readyc:
	case <-r.done:
		cancel()
		t.Fatalf("run returned before ready: %v\nstderr:\n%s", r.err, r.stderr)
	case <-time.After(3 * time.Minute):
		cancel()
		t.Fatalf("not ready after 3 minutes\nstderr:\n%s", r.stderr)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
		}
	})
	return r
}

// stop cancels (what Ctrl-C does) and requires a clean, prompt exit.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		require.NoError(t, r.err, "stderr:\n%s", r.stderr)
	case <-time.After(45 * time.Second):
		t.Fatalf("did not stop within 45s\nstderr:\n%s", r.stderr)
	}
}

func call(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func localPorts(extra ...string) []string {
	return append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-app-addr", "127.0.0.1:0",
		"-sessionsvc-addr", "127.0.0.1:0", "-envoy-config", envoyYAML}, extra...)
}

// TestRunWholeSystem is `make run`: start, the banner's three curl lines,
// Ctrl-C.
func TestRunWholeSystem(t *testing.T) {
	wasm := testenv.PluginWasmPath(t)
	db := "sqlite://" + filepath.Join(t.TempDir(), "data", "meshsession.db")
	r := start(t, localPorts("-wasm", wasm, "-database-url", db)...)
	require.NotEmpty(t, r.ready.Proxy)
	require.NotEmpty(t, r.ready.App)
	require.NotEmpty(t, r.ready.Sessionsvc)
	require.NotEmpty(t, r.ready.AdminToken)
	out := r.stdout.String()
	proxy := "http://" + r.ready.Proxy
	for _, want := range []string{
		"dev proxy    " + proxy, "demo app     http://" + r.ready.App, "sessionsvc   http://" + r.ready.Sessionsvc,
		"admin token  " + r.ready.AdminToken, "curl -s " + proxy + "/api/auth/local",
		"curl -si " + proxy + "/api/articles", "curl -s " + proxy + "/api/magic-sessionmanager/my-sessions",
		"proxy admin  http://" + r.ready.ProxyAdmin + "/stats", "Ctrl-C",
	} {
		assert.Contains(t, out, want)
	}

	// The three curl lines.
	status, body := call(t, "POST", proxy+"/api/auth/local", "", map[string]string{"identifier": "alice", "password": "alice-password"})
	require.Equal(t, 200, status, "%s", body)
	var login demoapp.AuthResponse
	require.NoError(t, json.Unmarshal(body, &login))
	require.NotEmpty(t, login.JWT)
	status, body = call(t, "GET", proxy+"/api/articles", login.JWT, nil)
	require.Equal(t, 200, status, "%s", body)
	status, body = call(t, "GET", proxy+"/api/magic-sessionmanager/my-sessions", login.JWT, nil)
	require.Equal(t, 200, status, "%s", body)
	var my struct {
		Data []struct {
			SessionID string `json:"sessionId"`
			IsActive  bool   `json:"isActive"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &my))
	require.Len(t, my.Data, 1)
	assert.True(t, my.Data[0].IsActive)
	// The admin token printed works on sessionsvc's admin API.
	status, body = call(t, "GET", "http://"+r.ready.Sessionsvc+"/magic-sessionmanager/sessions", r.ready.AdminToken, nil)
	require.Equal(t, 200, status, "%s", body)
	// The proxy admin serves the plugin's metrics.
	status, body = call(t, "GET", "http://"+r.ready.ProxyAdmin+"/stats", "", nil)
	require.Equal(t, 200, status)
	assert.Contains(t, string(body), "wasmcustom.meshsession_logins_registered: 1")

	r.stop(t)
	assert.Contains(t, r.stderr.String(), "sessionsvc stopped")
	_, err := http.Get(proxy + "/healthz")
	require.Error(t, err, "the proxy listener is closed")
	_, err = os.Stat(strings.TrimPrefix(db, "sqlite://"))
	require.NoError(t, err, "the SQLite database was created")
}

// TestRunProxyOnly runs only the proxy in front of an app; sessionsvc is
// not running: its route answers a clear 503.
func TestRunProxyOnly(t *testing.T) {
	wasm := testenv.PluginWasmPath(t)
	app := httptest.NewServer(demoapp.New(demoapp.Config{}))
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())

	r := start(t, "proxy", "-listen", "127.0.0.1:0", "-admin", "off", "-envoy-config", envoyYAML, "-wasm", wasm,
		"-workers", "1", "-app-addr", app.Listener.Addr().String(), "-sessionsvc-addr", dead)
	assert.Empty(t, r.ready.Sessionsvc)
	assert.Empty(t, r.ready.ProxyAdmin)
	assert.NotContains(t, r.stdout.String(), "admin token")
	proxy := "http://" + r.ready.Proxy
	status, body := call(t, "GET", proxy+"/api/echo", "", nil)
	assert.Equal(t, 200, status, "%s", body)
	status, body = call(t, "GET", proxy+"/api/magic-sessionmanager/my-sessions", "", nil)
	assert.Equal(t, 503, status)
	assert.Contains(t, string(body), "connection failure")
	assert.Contains(t, string(body), `cluster "sessionsvc" at `+dead)
	r.stop(t)
}

// TestRunBadInput: clear errors, non-zero exit (an error from run), no hang.
func TestRunBadInput(t *testing.T) {
	base, err := os.ReadFile(envoyYAML)
	require.NoError(t, err)
	writeYAML := func(t *testing.T, from, to string) string {
		t.Helper()
		require.Contains(t, string(base), from)
		p := filepath.Join(t.TempDir(), "envoy.yaml")
		require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(base), from, to, 1)), 0o600))
		return p
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	missingWasm := filepath.Join(t.TempDir(), "plugin.wasm")

	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
		want []string
	}{
		{"missing envoy.yaml", func(t *testing.T) []string {
			return []string{"-envoy-config", filepath.Join(t.TempDir(), "nope.yaml")}
		}, []string{"nope.yaml", "no such file"}},
		{"envoy.yaml with an unknown field", func(t *testing.T) []string {
			return localPorts("-envoy-config", writeYAML(t, "stat_prefix: ingress_http", "stat_prefix: ingress_http\n          stat_prefixx: typo"),
				"-wasm", missingWasm, "-database-url", "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
		}, []string{"envoy.yaml", "stat_prefixx"}},
		{"plugin configuration with a bad field", func(t *testing.T) []string {
			return localPorts("-envoy-config", writeYAML(t, `"sync_interval": "500ms"`, `"sync_interval": "5x"`),
				"-wasm", missingWasm, "-database-url", "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
		}, []string{"wasm filter configuration", "sync_interval"}},
		{"route to an undefined cluster", func(t *testing.T) []string {
			return localPorts("-envoy-config", writeYAML(t, "route: { cluster: app, timeout: 15s }", "route: { cluster: nosuch, timeout: 15s }"),
				"-wasm", missingWasm)
		}, []string{"route.cluster", `"nosuch"`}},
		{"missing plugin.wasm", func(t *testing.T) []string {
			return localPorts("-wasm", missingWasm, "-database-url", "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
		}, []string{missingWasm, "make plugin"}},
		{"sessionsvc port in use", func(t *testing.T) []string {
			a := localPorts("-wasm", missingWasm)
			return append(a, "-sessionsvc-addr", busy.Addr().String())
		}, []string{"sessionsvc", busy.Addr().String(), "address already in use"}},
		{"app port in use", func(t *testing.T) []string {
			a := localPorts("-wasm", missingWasm)
			return append(a, "-app-addr", busy.Addr().String())
		}, []string{"demo app", "address already in use"}},
		{"proxy port in use", func(t *testing.T) []string {
			return append(localPorts("-wasm", missingWasm, "-database-url", "sqlite://"+filepath.Join(t.TempDir(), "x.db")),
				"-listen", busy.Addr().String())
		}, []string{`listener "ingress"`, "address already in use"}},
		{"bad database url", func(t *testing.T) []string {
			return localPorts("-wasm", missingWasm, "-database-url", "mysql://x")
		}, []string{"sessionsvc", "unsupported DATABASE_URL"}},
		{"bad workers", func(t *testing.T) []string { return []string{"-workers", "0"} }, []string{"-workers"}},
		{"unknown flag", func(t *testing.T) []string { return []string{"-nope"} }, []string{"not defined: -nope"}},
		{"stray argument", func(t *testing.T) []string { return []string{"serve"} }, []string{"unexpected arguments"}},
		{"bad plugin log level", func(t *testing.T) []string { return []string{"-plugin-log-level", "loud"} }, []string{"plugin-log-level"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(context.Background(), tc.args(t), func(string) string { return "" }, io.Discard, &stderr, func(Ready) {
					t.Error("became ready despite bad input")
				})
			}()
			select {
			case err := <-done:
				require.Error(t, err)
				for _, w := range tc.want {
					assert.Contains(t, err.Error()+stderr.String(), w)
				}
			case <-time.After(time.Minute):
				t.Fatal("hung on bad input")
			}
		})
	}
}

// TestBindDefaults: every listener is on loopback unless asked; -bind (or
// MESHSESSION_DEV_BIND) moves the defaults, explicit addresses win.
func TestBindDefaults(t *testing.T) {
	env, err := envoyconfig.Load(envoyYAML)
	require.NoError(t, err)
	require.NotNil(t, env.Admin)
	lp, ap := strconv.Itoa(int(env.Listener.Address.Port)), strconv.Itoa(int(env.Admin.Port))
	for _, tt := range []struct {
		name                           string
		args                           []string
		env                            map[string]string
		listen, admin, app, sessionsvc string
		err                            string
	}{
		{name: "defaults: loopback", listen: "127.0.0.1:" + lp, admin: "127.0.0.1:" + ap, app: "127.0.0.1:3000", sessionsvc: "127.0.0.1:8081"},
		{name: "flag", args: []string{"-bind", "0.0.0.0"}, listen: "0.0.0.0:" + lp, admin: "0.0.0.0:" + ap, app: "0.0.0.0:3000", sessionsvc: "0.0.0.0:8081"},
		{name: "env", env: map[string]string{"MESHSESSION_DEV_BIND": "::1"}, listen: "[::1]:" + lp, admin: "[::1]:" + ap, app: "[::1]:3000", sessionsvc: "[::1]:8081"},
		{name: "bracketed", args: []string{"-bind", "[::]"}, listen: "[::]:" + lp, admin: "[::]:" + ap, app: "[::]:3000", sessionsvc: "[::]:8081"},
		{name: "explicit wins", args: []string{"-bind", "0.0.0.0", "-listen", "127.0.0.1:1", "-admin", "off", "-app-addr", "127.0.0.1:2"},
			listen: "127.0.0.1:1", admin: "off", app: "127.0.0.1:2", sessionsvc: "0.0.0.0:8081"},
		{name: "DEMOAPP_ADDR", env: map[string]string{"DEMOAPP_ADDR": "127.0.0.1:4000"}, listen: "127.0.0.1:" + lp, admin: "127.0.0.1:" + ap, app: "127.0.0.1:4000", sessionsvc: "127.0.0.1:8081"},
		{name: "not a host", args: []string{"-bind", "127.0.0.1:80"}, err: "-bind"},
		{name: "empty", args: []string{"-bind", ""}, err: "-bind"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			listen, admin := proxyAddrs(o, env)
			assert.Equal(t, tt.listen, listen)
			assert.Equal(t, tt.admin, admin)
			assert.Equal(t, tt.app, o.appAddr)
			assert.Equal(t, tt.sessionsvc, o.sessionsvcAddr)
		})
	}
}

// TestInterruptExitsZero: the built program (what `make run` executes)
// stops on SIGINT (Ctrl-C) and exits with status 0, so make reports no
// error. (`go run` would exit 1 on the same signal whatever the program
// does, which is why the Makefile builds and execs the binary.)
func TestInterruptExitsZero(t *testing.T) {
	wasm, err := filepath.Abs(testenv.PluginWasmPath(t))
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "meshsession-dev")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(localPorts("-wasm", wasm, "-workers", "1"),
		"-database-url", "sqlite://"+filepath.Join(t.TempDir(), "i.db"))...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &syncBuffer{}
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Press Ctrl-C") {
			ready = true
			break
		}
	}
	require.True(t, ready, "no banner; stderr: %s", cmd.Stderr)
	go func() {
		for sc.Scan() { // drain
		}
	}()
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("exit status %d after SIGINT; stderr: %s", ee.ExitCode(), cmd.Stderr)
	}
	require.NoError(t, err)
	assert.Contains(t, cmd.Stderr.(*syncBuffer).String(), "msg=stopped")
}

// TestMakeRunExecsTheBinary: `make run` must not wrap the program in `go
// run`, which exits 1 on SIGINT even after a clean stop (make then prints
// "Error 1").
func TestMakeRunExecsTheBinary(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "Makefile"))
	require.NoError(t, err)
	var recipe []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "run:"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			in = false
		}
	}
	require.NotEmpty(t, recipe, "Makefile: no run recipe")
	for _, l := range recipe {
		assert.NotContains(t, l, "$(GO) run", "make run must exec the built program")
	}
	assert.Contains(t, recipe[len(recipe)-1], "exec .build/meshsession-dev", "the last step runs the binary in place of the shell")
}
