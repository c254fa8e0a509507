package host_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
)

// These tests run the real plugin.wasm (built by `make plugin`) and check what
// the ABI itself shows: lifecycle, start failures, traps, memory.

func TestPluginStartsOnEveryWorker(t *testing.T) {
	h := newHost(t, host.Config{Module: pluginWasm(t), Workers: 2})
	started := map[int]bool{}
	for _, l := range h.Logs() {
		if strings.Contains(l.Message, "filter started") {
			started[l.Worker] = true
		}
	}
	assert.Equal(t, map[int]bool{0: true, 1: true}, started, "proxy_on_configure ran on every worker: %v", h.Logs())
	for i := 0; i < h.Workers(); i++ {
		p, err := h.TickPeriod(i)
		require.NoError(t, err)
		assert.Positive(t, p, "worker %d armed its tick timer", i)
		require.NoError(t, h.Tick(i), "proxy_on_tick on worker %d", i)
	}
}

func TestPluginRequestLifecycle(t *testing.T) {
	h := newHost(t, host.Config{Module: pluginWasm(t), Workers: 2})
	for i := 0; i < 10; i++ {
		s, err := h.NewStream(-1)
		require.NoError(t, err)
		assert.Equal(t, i%2, s.Worker(), "round-robin")
		res, err := s.RequestHeaders(reqHeaders([2]string{"x-session-id", "forged"}, [2]string{"x-user-id", "forged"}), true)
		require.NoError(t, err)
		assert.Equal(t, host.ActionContinue, res.Action)
		assert.Nil(t, res.LocalResponse)
		hdrs := s.RequestHeaderPairs()
		assert.Empty(t, header(hdrs, "x-session-id"), "client identity headers are stripped")
		assert.Empty(t, header(hdrs, "x-user-id"))
		assert.Equal(t, "/api/things?x=1", header(hdrs, ":path"))
		res, err = s.ResponseHeaders([][2]string{{":status", "200"}}, true)
		require.NoError(t, err)
		assert.Equal(t, host.ActionContinue, res.Action)
		require.NoError(t, s.Finish())
	}
}

func TestPluginBadConfiguration(t *testing.T) {
	wasm := pluginWasm(t)
	for name, cfg := range map[string]string{
		"not JSON":      `{"cluster":`,
		"unknown field": `{"no_such_field": 1}`,
		"wrong type":    `{"cluster": 42}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := host.New(context.Background(), host.Config{Module: wasm, Workers: 1,
				PluginConfig: []byte(cfg), CompilationCache: cache})
			require.Error(t, err)
			var verr *host.VMError
			require.True(t, errors.As(err, &verr), "%v", err)
			assert.Equal(t, "proxy_on_configure", verr.Call)
			assert.Contains(t, verr.GuestOutput, "invalid plugin configuration", "the plugin's own message reaches the user")
			if name == "unknown field" {
				assert.Contains(t, err.Error(), "no_such_field")
			}
		})
	}
}

func TestPluginTrapIsAnErrorNotACrash(t *testing.T) {
	h := newHost(t, host.Config{Module: pluginWasm(t), Workers: 2})
	// An HTTP callback on a context the guest never created: the SDK panics.
	_, err := h.Call(0, "proxy_on_request_headers", 999, 0, 0)
	require.Error(t, err)
	assert.ErrorIs(t, err, host.ErrVMFailed)
	assert.Contains(t, err.Error(), "invalid context", "the guest's panic message")
	assert.Error(t, h.Failed(0))

	s, err := h.NewStream(0)
	require.NoError(t, err)
	_, err = s.RequestHeaders(reqHeaders(), true)
	assert.ErrorIs(t, err, host.ErrVMFailed, "the failed VM refuses further calls")

	s, err = h.NewStream(1)
	require.NoError(t, err)
	_, err = s.RequestHeaders(reqHeaders(), true)
	require.NoError(t, err, "the other worker is unaffected")
	require.NoError(t, s.Finish())
}

func TestPluginMissingExport(t *testing.T) {
	wasm := pluginWasm(t)
	renamed := strings.Replace(string(wasm), "proxy_on_memory_allocate", "proxy_on_memory_allocatX", 1)
	require.NotEqual(t, string(wasm), renamed)
	_, err := host.New(context.Background(), host.Config{Module: []byte(renamed), CompilationCache: cache})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "proxy_on_memory_allocate")
}

func TestPluginInspect(t *testing.T) {
	imports, exports, err := host.Inspect(context.Background(), pluginWasm(t))
	require.NoError(t, err)
	assert.Contains(t, exports, "_initialize")
	assert.Contains(t, exports, "proxy_abi_version_0_2_0")
	assert.Contains(t, exports, "memory")
	var env int
	for _, im := range imports {
		switch im.Module {
		case "env":
			env++
			assert.True(t, strings.HasPrefix(im.Name, "proxy_"), im.String())
		case "wasi_snapshot_preview1":
		default:
			t.Errorf("unexpected import module %s", im)
		}
	}
	assert.NotZero(t, env)
	_, _, err = host.Inspect(context.Background(), []byte("garbage"))
	assert.Error(t, err)
}

func TestPluginMemoryStaysFlat(t *testing.T) {
	h := newHost(t, host.Config{Module: pluginWasm(t), Workers: 1, DisableTicks: true})
	run := func(n int) {
		for i := 0; i < n; i++ {
			s, err := h.NewStream(0)
			require.NoError(t, err)
			_, err = s.RequestHeaders(reqHeaders([2]string{"authorization", "Bearer abc"}), true)
			require.NoError(t, err)
			_, err = s.ResponseHeaders([][2]string{{":status", "200"}}, true)
			require.NoError(t, err)
			require.NoError(t, s.Finish())
		}
	}
	run(20000)
	before, err := h.MemoryPages(0)
	require.NoError(t, err)
	run(40000)
	after, err := h.MemoryPages(0)
	require.NoError(t, err)
	assert.LessOrEqual(t, after, before+16, "linear memory grows with requests: %d -> %d pages", before, after)
}
