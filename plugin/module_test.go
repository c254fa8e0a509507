package main

// Tests of the shipped module itself: will Envoy load it, and will it stay
// alive on Envoy builds whose poll_oneoff answers ENOSYS.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/plugin/wasmpatch"
)

// envoyEnv is what Envoy 1.33's host (proxy-wasm-cpp-host) provides in "env".
var envoyEnv = []string{
	"proxy_log", "proxy_get_status", "proxy_set_property", "proxy_get_property", "proxy_send_local_response",
	"proxy_get_shared_data", "proxy_set_shared_data", "proxy_register_shared_queue", "proxy_resolve_shared_queue",
	"proxy_dequeue_shared_queue", "proxy_enqueue_shared_queue", "proxy_get_header_map_value",
	"proxy_add_header_map_value", "proxy_replace_header_map_value", "proxy_remove_header_map_value",
	"proxy_get_header_map_pairs", "proxy_set_header_map_pairs", "proxy_get_header_map_size",
	"proxy_get_buffer_status", "proxy_get_buffer_bytes", "proxy_set_buffer_bytes", "proxy_http_call",
	"proxy_grpc_call", "proxy_grpc_stream", "proxy_grpc_close", "proxy_grpc_cancel", "proxy_grpc_send",
	"proxy_set_tick_period_milliseconds", "proxy_get_current_time_nanoseconds", "proxy_define_metric",
	"proxy_increment_metric", "proxy_record_metric", "proxy_get_metric", "proxy_set_effective_context",
	"proxy_done", "proxy_call_foreign_function", "proxy_continue_stream", "proxy_close_stream",
}

// envoyNeeds are the exports Envoy calls for an HTTP filter.
var envoyNeeds = []string{
	"_initialize", "proxy_abi_version_0_2_0", "proxy_on_memory_allocate", "proxy_on_context_create",
	"proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers", "proxy_on_request_body",
	"proxy_on_response_headers", "proxy_on_response_body", "proxy_on_http_call_response", "proxy_on_tick",
	"proxy_on_done", "proxy_on_log", "proxy_on_delete",
}

func TestEnvoyWillLoadTheModule(t *testing.T) {
	module := testenv.PluginWasm(t)
	imports, exports, err := host.Inspect(context.Background(), module)
	require.NoError(t, err)

	allowed := map[string]bool{}
	for _, n := range wasmpatch.EnvoyWASI {
		allowed["wasi_snapshot_preview1."+n] = true
	}
	for _, n := range envoyEnv {
		allowed["env."+n] = true
	}
	for _, imp := range imports {
		assert.True(t, allowed[imp.String()], "Envoy 1.33 does not provide %s: it would refuse the module (missing import)", imp)
		assert.NotEqual(t, "poll_oneoff", imp.Name, "poll_oneoff must be rewritten away (old Envoys answer ENOSYS)")
	}
	have := map[string]bool{}
	for _, e := range exports {
		have[e] = true
	}
	for _, e := range envoyNeeds {
		assert.True(t, have[e], "missing export %s", e)
	}
	assert.False(t, have["_start"], "a command module exits after _start; Envoy then traps: build with -buildmode=c-shared")
}

// drive runs requests that make the guest allocate (a large cookie copied
// into a guest heap buffer per request: on the refresh route the filter
// reads the Cookie header for the presented refresh token; the request
// header map itself is read into one reused buffer) and returns the
// guest's GC count, read from the plugin's meshsession_vm_gc_cycles gauge
// after a tick.
func drive(t *testing.T, h *host.Host, until int64, maxRequests int) (int64, error) {
	t.Helper()
	cookie := "theme=" + strings.Repeat("x", 128<<10)
	var gcs int64
	for i := 1; i <= maxRequests; i++ {
		s, err := h.NewStream(0)
		if err != nil {
			return gcs, err
		}
		if _, err := s.RequestHeaders([][2]string{{":method", "POST"}, {":path", "/api/auth/refresh"}, {":authority", "a"}, {"cookie", cookie}}, true); err != nil {
			return gcs, err
		}
		if err := s.Finish(); err != nil {
			return gcs, err
		}
		if i%500 == 0 {
			if err := h.Tick(0); err != nil {
				return gcs, err
			}
			if m, ok := h.Metrics().Get("meshsession_vm_gc_cycles"); ok {
				gcs = m.Value
			}
			if gcs >= until {
				return gcs, nil
			}
		}
	}
	return gcs, nil
}

func newENOSYSHost(t *testing.T, module []byte) (*host.Host, error) {
	return host.New(context.Background(), host.Config{
		Module: module, Workers: 1, VMID: "meshsession", RootID: "meshsession",
		PluginConfig: []byte(`{"token_cookie":"jwt"}`), DisableTicks: true,
		PollOneoffENOSYS: true,
		Clusters:         map[string]host.Cluster{"sessionsvc": {}},
	})
}

func TestShippedModuleSurvives1000GCsWhenPollOneoffIsENOSYS(t *testing.T) {
	module := testenv.PluginWasm(t)
	h, err := newENOSYSHost(t, module)
	require.NoError(t, err)
	defer h.Close(context.Background())
	pagesBefore, err := h.MemoryPages(0)
	require.NoError(t, err)
	start := time.Now()
	gcs, err := drive(t, h, 1000, 400000)
	require.NoError(t, err, "the guest died: %v", h.Failed(0))
	require.GreaterOrEqual(t, gcs, int64(1000), "GC cycles run")
	require.NoError(t, h.Failed(0))
	pages, _ := h.MemoryPages(0)
	t.Logf("%d GC cycles in %s; linear memory %d -> %d pages", gcs, time.Since(start).Round(time.Millisecond), pagesBefore, pages)
}
