package host_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/meshsession/meshsession/e2e/host"
)

// cache shares compiled code between the Hosts of this test binary.
var cache = wazero.NewCompilationCache()

var (
	guestOnce sync.Once
	guestDir  string
	guestBin  []byte
	guestErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if guestDir != "" {
		_ = os.RemoveAll(guestDir)
	}
	os.Exit(code)
}

// guestWasm builds testdata/guest, a minimal ABI-level proxy-wasm module,
// once per test binary.
func guestWasm(t testing.TB) []byte {
	t.Helper()
	guestOnce.Do(func() {
		guestDir, guestErr = os.MkdirTemp("", "hostguest")
		if guestErr != nil {
			return
		}
		out := filepath.Join(guestDir, "guest.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/guest")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			guestErr = fmt.Errorf("build test guest: %v\n%s", err, b)
			return
		}
		guestBin, guestErr = os.ReadFile(out)
	})
	require.NoError(t, guestErr)
	return guestBin
}

// pluginWasm reads the real plugin.wasm built by `make plugin`
// (MESHSESSION_PLUGIN_WASM overrides the path). Missing, it fails when CI or
// MESHSESSION_REQUIRE_WASM is set (as `make test` does) and skips otherwise.
func pluginWasm(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join("..", "..", "plugin.wasm")
	if p := os.Getenv("MESHSESSION_PLUGIN_WASM"); p != "" {
		path = p
	}
	b, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("plugin.wasm not available (%v): run `make plugin` first", err)
		if os.Getenv("CI") != "" || os.Getenv("MESHSESSION_REQUIRE_WASM") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return b
}

func newHost(t testing.TB, cfg host.Config) *host.Host {
	t.Helper()
	if cfg.CompilationCache == nil {
		cfg.CompilationCache = cache
	}
	if cfg.VMID == "" {
		cfg.VMID = "vm"
	}
	if cfg.RootID == "" {
		cfg.RootID = "root"
	}
	h, err := host.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close(context.Background())) })
	return h
}

func reqHeaders(extra ...[2]string) [][2]string {
	return append([][2]string{
		{":method", "GET"}, {":path", "/api/things?x=1"}, {":authority", "app.local"}, {":scheme", "http"},
	}, extra...)
}

// command runs one request whose x-cmd header tells the test guest what to
// do, and returns the stream (not finished) and the result.
func command(t testing.TB, h *host.Host, worker int, cmd string) (*host.Stream, host.Result) {
	t.Helper()
	s, err := h.NewStream(worker)
	require.NoError(t, err)
	res, err := s.RequestHeaders(reqHeaders([2]string{"x-cmd", cmd}), true)
	require.NoError(t, err)
	return s, res
}

// header returns the first value of name in pairs.
func header(pairs [][2]string, name string) string {
	for _, p := range pairs {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

func statusOf(t testing.TB, s *host.Stream) host.Status {
	t.Helper()
	v, ok := s.RequestHeader("x-status")
	require.True(t, ok, "guest wrote no x-status")
	n, err := strconv.Atoi(v)
	require.NoError(t, err)
	return host.Status(n)
}

func sharedValue(h *host.Host, key string) string {
	v, _, st := h.SharedData("vm").Get(key)
	if st != host.StatusOK {
		return ""
	}
	return string(v)
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
