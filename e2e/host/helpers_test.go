package host_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/internal/testenv"
)

// cache shares compiled code between the Hosts of this test binary.
var cache = wazero.NewCompilationCache()

// guestWasm is testdata/guest, a minimal ABI-level proxy-wasm module, built
// once per test binary.
func guestWasm(tb testing.TB) []byte { return testenv.BuildWasm(tb, "testdata/guest") }

// pluginWasm is the real plugin.wasm built by `make plugin` (see internal/testenv).
func pluginWasm(tb testing.TB) []byte { return testenv.PluginWasm(tb) }

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
	return requestHeaders(t, h, worker, reqHeaders([2]string{"x-cmd", cmd}))
}

// requestHeaders starts a request of headers only on worker and returns
// the stream (not finished) and the result.
func requestHeaders(t testing.TB, h *host.Host, worker int, hdrs [][2]string) (*host.Stream, host.Result) {
	t.Helper()
	s, err := h.NewStream(worker)
	require.NoError(t, err)
	res, err := s.RequestHeaders(hdrs, true)
	require.NoError(t, err)
	return s, res
}

// localReply runs one request of headers only on worker 0 to its end and
// returns the filter's local response (nil: the request passed).
func localReply(t testing.TB, h *host.Host, hdrs [][2]string) *host.LocalResponse {
	t.Helper()
	s, res := requestHeaders(t, h, 0, hdrs)
	require.NoError(t, s.Finish())
	return res.LocalResponse
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
