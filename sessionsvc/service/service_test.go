package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// syncBuffer is a goroutine-safe buffer.
type syncBuffer = testenv.SyncBuffer

func TestHelpListsEnvNames(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"--help"}, testenv.Getenv(nil), &out, io.Discard, Hooks{}))
	for _, env := range []string{"SESSIONSVC_ADDR", "DATABASE_URL", "MESHSESSION_INTERNAL_KEY", "JWT_SECRET", "JWT_PUBLIC_KEY_FILE",
		"JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "ADMIN_TOKEN", "SESSION_ENCRYPTION_KEY", "INACTIVITY_TIMEOUT", "LOG_FORMAT", "LOG_LEVEL"} {
		assert.Contains(t, out.String(), env)
	}
}

func TestConfigPrecedenceAndErrors(t *testing.T) {
	cfg, endIdleSet, _, err := ParseConfig("x", []string{"--addr", ":9999"}, testenv.Getenv(map[string]string{
		"SESSIONSVC_ADDR": ":1111", "INACTIVITY_TIMEOUT": "20m", "RETENTION": "-1"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":9999", cfg.Addr, "flag beats env")
	assert.Equal(t, 20*time.Minute, cfg.InactivityTimeout, "env beats default")
	assert.Equal(t, time.Duration(-1), cfg.Retention)
	assert.Equal(t, 720*time.Hour, cfg.MaxSessionAge)
	assert.False(t, endIdleSet)

	_, endIdleSet, _, err = ParseConfig("x", nil, testenv.Getenv(map[string]string{"END_IDLE_AFTER": "1h"}), io.Discard)
	require.NoError(t, err)
	assert.True(t, endIdleSet)

	for env, want := range map[string]string{
		"INACTIVITY_TIMEOUT":       "INACTIVITY_TIMEOUT",
		"LOG_FORMAT":               "LOG_FORMAT",
		"LOG_LEVEL":                "LOG_LEVEL",
		"MESHSESSION_INTERNAL_KEY": "at least 16",
	} {
		_, _, _, err := ParseConfig("x", nil, testenv.Getenv(map[string]string{env: "bogus"}), io.Discard)
		require.Error(t, err, env)
		assert.Contains(t, err.Error(), want)
	}
	err = Run(context.Background(), []string{"--database-url", "mysql://x"}, testenv.Getenv(nil), io.Discard, io.Discard, Hooks{})
	assert.ErrorContains(t, err, "unsupported DATABASE_URL")
	err = Run(context.Background(), []string{"--database-url", "sqlite://" + filepath.Join(t.TempDir(), "x.db"),
		"--encryption-key", "c2hvcnQ="}, testenv.Getenv(nil), io.Discard, io.Discard, Hooks{})
	assert.ErrorContains(t, err, "32 bytes")
}

func TestTokenCLI(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	env := testenv.Getenv(map[string]string{"DATABASE_URL": db})
	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"token", "create", "--name", "ci"}, env, &out, io.Discard, Hooks{}))
	tok := regexp.MustCompile(`mss_[A-Za-z0-9_-]+`).FindString(out.String())
	require.NotEmpty(t, tok)
	out.Reset()
	require.NoError(t, Run(context.Background(), []string{"token", "list"}, env, &out, io.Discard, Hooks{}))
	assert.Contains(t, out.String(), "ci")
	assert.NotContains(t, out.String(), tok, "tokens are shown once, never listed")
	require.NoError(t, Run(context.Background(), []string{"token", "revoke", "1"}, env, &out, io.Discard, Hooks{}))
	assert.ErrorContains(t, Run(context.Background(), []string{"token", "revoke", "77"}, env, &out, io.Discard, Hooks{}), "no token")
	assert.ErrorContains(t, Run(context.Background(), []string{"token", "create"}, env, &out, io.Discard, Hooks{}), "--name")
	assert.ErrorContains(t, Run(context.Background(), []string{"token", "revoke", "x"}, env, &out, io.Discard, Hooks{}), "not a token ID")
	assert.Error(t, Run(context.Background(), []string{"token"}, env, &out, io.Discard, Hooks{}))
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestRunZeroConfig starts sessionsvc as `go run ./sessionsvc` would (only
// a data directory and port chosen), uses the printed development keys,
// and shuts it down gracefully.
func TestRunZeroConfig(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	stdout := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--addr", addr}, testenv.Getenv(map[string]string{"DATABASE_URL": "sqlite://" + dir + "/data/m.db",
			"JWT_SECRET": "a-secret-of-enough-length"}), stdout, io.Discard, Hooks{})
	}()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		r, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)
	key := regexp.MustCompile(`MESHSESSION_INTERNAL_KEY=(\S+)`).FindStringSubmatch(stdout.String())
	admin := regexp.MustCompile(`ADMIN_TOKEN=(\S+)`).FindStringSubmatch(stdout.String())
	require.Len(t, key, 2, stdout.String())
	require.Len(t, admin, 2, stdout.String())

	body, _ := json.Marshal(protocol.RegisterRequest{UserID: "u", Keys: []string{"sid:zero"}})
	req, _ := http.NewRequest("POST", base+protocol.PathSessions, bytes.NewReader(body))
	req.Header.Set(protocol.HeaderKey, key[1])
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	assert.Equal(t, 200, r.StatusCode)

	req, _ = http.NewRequest("GET", base+"/magic-sessionmanager/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+admin[1])
	r, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var list map[string]any
	require.NoError(t, json.NewDecoder(r.Body).Decode(&list))
	r.Body.Close()
	assert.Equal(t, float64(1), list["meta"].(map[string]any)["count"])

	// CORS_ORIGINS defaults to "*", as Strapi's cors middleware.
	req, _ = http.NewRequest("OPTIONS", base+"/api/magic-sessionmanager/logout", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	r, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	assert.Equal(t, 204, r.StatusCode)
	assert.Equal(t, "*", r.Header.Get("Access-Control-Allow-Origin"))

	cancel()
	testenv.Returned(t, done, 10*time.Second, "no graceful shutdown")
	_, err = http.Get(base + "/healthz")
	assert.Error(t, err, "listener closed")

	// A restart with ADMIN_TOKEN unset revokes the previous development token.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	svc, err := New(ctx2, Config{DatabaseURL: "sqlite://" + dir + "/data/m.db", InactivityTimeout: time.Minute}, false, Hooks{}, nil, io.Discard)
	require.NoError(t, err)
	defer svc.Close()
	_, err = svc.Store.FindAdminToken(ctx2, hashForTest(admin[1]), time.Now())
	assert.Error(t, err)
	assert.True(t, svc.GeneratedAdmin)
}

// TestGracefulShutdownDrains checks an in-flight request completes.
func TestGracefulShutdownDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow, arrived := make(chan struct{}), make(chan struct{})
	hooks := Hooks{Mounts: func(ctx context.Context, d Deps) (map[string]http.Handler, error) {
		return map[string]http.Handler{"GET /slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-slow
			fmt.Fprint(w, "done")
		})}, nil
	}}
	svc, err := New(ctx, Config{DatabaseURL: "sqlite://" + t.TempDir() + "/m.db", InternalKey: strings.Repeat("k", 20),
		AdminToken: strings.Repeat("a", 20), InactivityTimeout: time.Minute, CleanupInterval: time.Minute, ShutdownTimeout: 5 * time.Second}, false, hooks, nil, io.Discard)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	got := make(chan string, 1)
	go func() {
		r, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		got <- string(b)
	}()
	<-arrived
	cancel()
	// Shutdown has begun once the listener refuses connections; the request
	// is still held, so Serve must not have returned.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second, time.Millisecond, "listener still open after cancel")
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}
	close(slow)
	assert.Equal(t, "done", <-got)
	require.NoError(t, <-done)
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	assert.Equal(t, ":8081", c.Addr)
	assert.Equal(t, 15*time.Minute, c.InactivityTimeout)
	assert.Equal(t, 90*24*time.Hour, c.Retention)
	assert.Equal(t, time.Second, c.ActivityFlush)
}

// TestConfigCORSOrigins: CORS_ORIGINS / --cors-origins, "*" (Strapi's
// default) unless set; none turns CORS off; origins are checked.
func TestConfigCORSOrigins(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "default: any origin, as Strapi", want: []string{"*"}},
		{name: "none", env: "none", want: nil},
		{name: "list", env: "https://app.example, http://localhost:3000", want: []string{"http://localhost:3000", "https://app.example"}},
		{name: "flag beats env", env: "none", args: []string{"--cors-origins", "https://app.example"}, want: []string{"https://app.example"}},
		{name: "not an origin", env: "app.example", wantErr: "CORS_ORIGINS"},
		{name: "* in a list", env: "*,https://app.example", wantErr: "CORS_ORIGINS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.env != "" {
				env["CORS_ORIGINS"] = tc.env
			}
			cfg, _, _, err := ParseConfig("x", tc.args, testenv.Getenv(env), io.Discard)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.CORSOrigins)
		})
	}
}
