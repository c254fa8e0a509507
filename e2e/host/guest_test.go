package host_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/wasmpatch"
)

// These tests drive testdata/guest, which calls the ABI directly, to check
// the host's Envoy behaviours one by one.

func TestGuestSharedDataCASAcrossWorkers(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, DisableTicks: true})

	s, _ := command(t, h, 0, "get:k")
	assert.Equal(t, host.StatusNotFound, statusOf(t, s), "missing key")

	s, _ = command(t, h, 0, "set:k:v1:0")
	require.Equal(t, host.StatusOK, statusOf(t, s))

	s, _ = command(t, h, 1, "get:k")
	require.Equal(t, host.StatusOK, statusOf(t, s), "worker 1 sees worker 0's write")
	v, _ := s.RequestHeader("x-value")
	assert.Equal(t, "v1", v)
	casStr, _ := s.RequestHeader("x-cas")
	cas1, err := strconv.Atoi(casStr)
	require.NoError(t, err)
	assert.NotZero(t, cas1)

	s, _ = command(t, h, 1, fmt.Sprintf("set:k:v2:%d", cas1))
	assert.Equal(t, host.StatusOK, statusOf(t, s), "current cas")
	s, _ = command(t, h, 0, fmt.Sprintf("set:k:v3:%d", cas1))
	assert.Equal(t, host.StatusCasMismatch, statusOf(t, s), "stale cas")
	s, _ = command(t, h, 0, "set:k:v4:0")
	assert.Equal(t, host.StatusOK, statusOf(t, s), "cas 0 is unconditional")
	s, _ = command(t, h, 0, "set:fresh:x:4242")
	assert.Equal(t, host.StatusOK, statusOf(t, s), "new key is unconditional")

	assert.Equal(t, "v4", sharedValue(h, "k"))
}

func TestGuestStreamLifecycleForwardsDelete(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	const n = 50
	for i := 0; i < n; i++ {
		s, res := command(t, h, 0, "none")
		assert.Equal(t, host.ActionContinue, res.Action)
		_, err := s.ResponseHeaders([][2]string{{":status", "200"}}, true)
		require.NoError(t, err)
		assert.Equal(t, "0:200", header(s.ResponseHeaderPairs(), "x-seen-status"))
		require.NoError(t, s.Finish())
		require.NoError(t, s.Finish(), "Finish is idempotent")
	}
	var live, logged string
	for _, k := range h.SharedData("vm").Keys() {
		switch {
		case strings.HasPrefix(k, "live:"):
			live = sharedValue(h, k)
		case strings.HasPrefix(k, "logged:"):
			logged = sharedValue(h, k)
		}
	}
	assert.Equal(t, "0", live, "proxy_on_delete reached the guest for every stream")
	assert.Equal(t, strconv.Itoa(n), logged, "proxy_on_log before proxy_on_delete")

	s, err := h.NewStream(0)
	require.NoError(t, err)
	require.NoError(t, s.Finish(), "a stream never started has no context to delete")
	_, err = s.RequestHeaders(reqHeaders(), true)
	assert.ErrorIs(t, err, host.ErrStreamFinished)
}

func TestGuestHeaderMapOps(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s, _ := command(t, h, 0, "rewrite")
	// set_header_map_pairs replaced the whole map (keys lower-cased), replace
	// kept one x-new, the size is that of the serialised map, and the
	// response headers do not exist yet (BadArgument).
	assert.Equal(t, [][2]string{{":path", "/rewritten"}, {"x-new", "2"}, {"x-rewrite", "0002:45"}},
		s.RequestHeaderPairs())
	require.NoError(t, s.Finish())

	s, _ = command(t, h, 0, "pairs")
	assert.Equal(t, host.StatusOK, statusOf(t, s))
	assert.Equal(t, strconv.Itoa(len(host.EncodePairs(reqHeaders([2]string{"x-cmd", "pairs"})))),
		header(s.RequestHeaderPairs(), "x-value"))
	require.NoError(t, s.Finish())
}

func TestGuestLocalResponse(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s, res := command(t, h, 0, "local:403")
	assert.Equal(t, host.ActionPause, res.Action)
	require.NotNil(t, res.LocalResponse)
	assert.Equal(t, uint32(403), res.LocalResponse.Status)
	assert.Equal(t, "denied", string(res.LocalResponse.Body))
	assert.Equal(t, "guest_denied", res.LocalResponse.Details)
	assert.Equal(t, [][2]string{{"x-why", "test"}}, res.LocalResponse.Headers)
	assert.Equal(t, res.LocalResponse, s.LocalResponse())

	res, err := s.RequestBody([]byte("replace"), true)
	require.NoError(t, err)
	assert.NotNil(t, res.LocalResponse, "the stream stays stopped")
	assert.Empty(t, s.RequestBodyBytes(), "no body callback after a local response")
	require.NoError(t, s.Finish())
}

func TestGuestBodySemantics(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	for _, tc := range []struct {
		in, want string
		status   host.Status
	}{
		{"prepend", ">prepend", host.StatusOK},
		{"replace all of this", "new", host.StatusOK},
		{"append", "append<", host.StatusOK},
		{"middle", "middle", host.StatusBadArgument},
	} {
		s, _ := command(t, h, 0, "none")
		_, err := s.RequestBody([]byte(tc.in), true)
		require.NoError(t, err)
		assert.Equal(t, tc.want, string(s.RequestBodyBytes()), tc.in)
		assert.Equal(t, strconv.Itoa(int(tc.status)), header(s.RequestHeaderPairs(), "x-body-status"), tc.in)
		require.NoError(t, s.Finish())
	}

	s, _ := command(t, h, 0, "none")
	res, err := s.RequestBody([]byte("buffer1"), false)
	require.NoError(t, err)
	assert.Equal(t, host.ActionPause, res.Action)
	res, err = s.RequestBody([]byte("+more"), true)
	require.NoError(t, err)
	assert.Equal(t, host.ActionContinue, res.Action)
	assert.Equal(t, "buffer1+more", string(s.RequestBodyBytes()), "a paused body is buffered")
	require.NoError(t, s.Finish())
}

func TestGuestProperties(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true, VMID: "vm", RootID: "rid",
		Properties: map[string][]byte{"node.id": []byte("node-1")}})
	prop := func(path string, setup func(*host.Stream)) (host.Status, []byte) {
		s, err := h.NewStream(0)
		require.NoError(t, err)
		if setup != nil {
			setup(s)
		}
		_, err = s.RequestHeaders(reqHeaders([2]string{"x-cmd", "prop:" + path}), true)
		require.NoError(t, err)
		defer func() { require.NoError(t, s.Finish()) }()
		v, err := hex.DecodeString(header(s.RequestHeaderPairs(), "x-value"))
		require.NoError(t, err)
		return statusOf(t, s), v
	}
	downstream := func(s *host.Stream) { s.SetDownstream("10.1.2.3:4567", "127.0.0.1:10000") }
	for path, want := range map[string][]byte{
		"request.path":        []byte("/api/things?x=1"),
		"request.url_path":    []byte("/api/things"),
		"request.method":      []byte("GET"),
		"request.host":        []byte("app.local"),
		"request.scheme":      []byte("http"),
		"plugin_vm_id":        []byte("vm"),
		"plugin_root_id":      []byte("rid"),
		"plugin_name":         []byte("rid"),
		"node.id":             []byte("node-1"),
		"source.address":      []byte("10.1.2.3:4567"),
		"source.port":         host.PropertyInt(4567),
		"destination.address": []byte("127.0.0.1:10000"),
	} {
		st, got := prop(path, downstream)
		assert.Equal(t, host.StatusOK, st, path)
		assert.Equal(t, want, got, path)
	}
	payload := "metadata.filter_metadata.envoy.filters.http.jwt_authn.jwt_payload"
	st, got := prop(payload, func(s *host.Stream) { s.SetProperty(payload, []byte(`{"sub":"u1"}`)) })
	assert.Equal(t, host.StatusOK, st)
	assert.Equal(t, `{"sub":"u1"}`, string(got))

	st, _ = prop("no.such.property", nil)
	assert.Equal(t, host.StatusNotFound, st)
}

func TestGuestInvalidPointerIsAStatus(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s, _ := command(t, h, 0, "oob")
	assert.Equal(t, host.StatusInvalidMemoryAccess, statusOf(t, s))
	require.NoError(t, h.Failed(0))
}

func TestGuestForeignFunctionAndMetrics(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, DisableTicks: true})
	s, _ := command(t, h, 0, "foreign")
	assert.Equal(t, host.StatusNotFound, statusOf(t, s))

	s, _ = command(t, h, 0, "metric")
	assert.Equal(t, host.StatusBadArgument, statusOf(t, s), "a counter cannot decrease")
	assert.Equal(t, "2", header(s.RequestHeaderPairs(), "x-value"))
	_, _ = command(t, h, 1, "metric")

	m, ok := h.Metrics().Get("guest_requests")
	require.True(t, ok)
	assert.Equal(t, host.MetricCounter, m.Type)
	assert.Equal(t, int64(4), m.Value, "one counter for every worker")
	hist, _ := h.Metrics().Get("guest_latency")
	assert.Equal(t, uint64(2), hist.Count)
	assert.Equal(t, int64(84), hist.Sum)
	g, _ := h.Metrics().Get("guest_gauge")
	assert.Equal(t, int64(5), g.Value)
	assert.Len(t, h.Metrics().All(), 3)
}

func TestGuestTicksOnEveryWorker(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, PluginConfig: []byte("tick:5")})
	for i := 0; i < 2; i++ {
		p, err := h.TickPeriod(i)
		require.NoError(t, err)
		assert.Equal(t, 5*time.Millisecond, p)
	}
	require.Eventually(t, func() bool {
		n := 0
		for _, k := range h.SharedData("vm").Keys() {
			if strings.HasPrefix(k, "ticks:") {
				if c, _ := strconv.Atoi(sharedValue(h, k)); c >= 3 {
					n++
				}
			}
		}
		return n == 2
	}, 10*time.Second, 5*time.Millisecond, "each worker's root context ticks")
}

func TestGuestManualTicks(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, PluginConfig: []byte("tick:1"), DisableTicks: true})
	time.Sleep(20 * time.Millisecond)
	assert.Empty(t, h.SharedData("vm").Keys(), "no timer ticks when disabled")
	require.NoError(t, h.Tick(1))
	require.NoError(t, h.Tick(1))
	keys := h.SharedData("vm").Keys()
	require.Len(t, keys, 1)
	assert.Equal(t, "2", sharedValue(h, keys[0]))
}

func TestGuestSharedQueue(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, DisableTicks: true})
	s, _ := command(t, h, 0, "enqueue:hello")
	assert.Equal(t, host.StatusOK, statusOf(t, s))
	require.Eventually(t, func() bool { return sharedValue(h, "queue:last") == "0:hello" },
		10*time.Second, time.Millisecond, "proxy_on_queue_ready dequeues the item")
}

func TestGuestHTTPCall(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/teapot":
			w.WriteHeader(418)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		case "/reset":
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhalf")
				_ = buf.Flush()
				_ = conn.Close()
			}
		default:
			_, _ = w.Write([]byte("hello"))
		}
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, DisableTicks: true, Clusters: map[string]host.Cluster{
		"up": {URL: up.URL}, "down": {URL: refused}, "nohosts": {},
	}})

	t.Run("synchronous BadArgument", func(t *testing.T) {
		s, res := command(t, h, 1, "callout:nosuchcluster:/")
		assert.Equal(t, host.StatusBadArgument, statusOf(t, s), "unknown cluster")
		assert.Equal(t, host.ActionContinue, res.Action)
		s, _ = command(t, h, 1, "callout:up:/:noauthority")
		assert.Equal(t, host.StatusBadArgument, statusOf(t, s), "missing :authority")
	})

	for _, tc := range []struct{ name, cmd, want string }{
		{"success", "callout:up:/ok", "headers=4 status=200/0 body=hello"},
		{"no healthy upstream", "callout:nohosts:/", "headers=3 status=503/0 body=no healthy upstream"},
		{"connection refused", "callout:down:/", "status=503/0 body=upstream connect error"},
		{"reset", "callout:up:/reset", "headers=0 status=/1 body="},
		{"timeout", "callout:up:/slow", "headers=3 status=504/0 body=upstream request timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, res := command(t, h, 1, tc.cmd)
			require.Equal(t, host.StatusOK, statusOf(t, s))
			require.Equal(t, host.ActionPause, res.Action)
			ev, err := s.Wait(waitCtx(t))
			require.NoError(t, err)
			assert.Equal(t, host.Event{Kind: host.EventContinue, Stream: host.StreamRequest}, ev)
			got := sharedValue(h, fmt.Sprintf("callout:%d", s.ID()))
			require.Eventually(t, func() bool { return h.PendingCallouts() == 0 }, 10*time.Second, time.Millisecond)
			if strings.HasPrefix(tc.want, "headers=") {
				assert.Equal(t, tc.want, got)
			} else {
				assert.Contains(t, got, tc.want)
			}
			require.NoError(t, s.Finish())
		})
	}

	t.Run("local response from the callback", func(t *testing.T) {
		s, _ := command(t, h, 0, "callout:up:/teapot")
		ev, err := s.Wait(waitCtx(t))
		require.NoError(t, err)
		assert.Equal(t, host.EventLocalResponse, ev.Kind)
		require.NotNil(t, ev.LocalResponse)
		assert.Equal(t, uint32(418), ev.LocalResponse.Status)
		assert.Equal(t, "teapot", string(s.LocalResponse().Body))
		require.NoError(t, s.Finish())
	})

	t.Run("wait honours its context", func(t *testing.T) {
		s, res := command(t, h, 0, "pause")
		assert.Equal(t, host.ActionPause, res.Action)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err := s.Wait(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, s.Finish())
	})
}

func TestGuestTrapFailsOnlyItsVM(t *testing.T) {
	for _, policy := range []host.FailurePolicy{host.FailClosed, host.FailReload} {
		t.Run(policy.String(), func(t *testing.T) {
			h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, DisableTicks: true, FailurePolicy: policy})
			assert.Equal(t, policy, h.FailurePolicy())
			s, err := h.NewStream(0)
			require.NoError(t, err)
			_, err = s.RequestHeaders(reqHeaders([2]string{"x-cmd", "trap"}), true)
			require.Error(t, err)
			assert.ErrorIs(t, err, host.ErrVMFailed)
			var verr *host.VMError
			require.True(t, errors.As(err, &verr))
			assert.Equal(t, "proxy_on_request_headers", verr.Call)
			assert.Contains(t, err.Error(), "guest trap requested", "the guest's panic message")
			assert.Error(t, h.Failed(0))
			assert.Error(t, s.Finish(), "calls on a failed VM fail at once")

			other, _ := command(t, h, 1, "none")
			require.NoError(t, other.Finish(), "the other worker still runs")

			s, err = h.NewStream(0)
			require.NoError(t, err)
			_, err = s.RequestHeaders(reqHeaders(), true)
			if policy == host.FailReload {
				require.NoError(t, err, "FAIL_RELOAD recreated the VM")
				require.NoError(t, h.Failed(0))
				require.NoError(t, s.Finish())
			} else {
				assert.ErrorIs(t, err, host.ErrVMFailed)
			}
		})
	}
}

func TestGuestStartFailures(t *testing.T) {
	guest := guestWasm(t)
	ctx := context.Background()

	_, err := host.New(ctx, host.Config{Module: guest, PluginConfig: []byte("bad-field"), CompilationCache: cache})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "proxy_on_configure")
	assert.Contains(t, err.Error(), `field "bad-field" is wrong`, "the guest's own message")

	_, err = host.New(ctx, host.Config{Module: guest[:len(guest)/2], CompilationCache: cache})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "compile wasm module")

	_, err = host.New(ctx, host.Config{Module: []byte("not wasm"), CompilationCache: cache})
	assert.Error(t, err)
	_, err = host.New(ctx, host.Config{})
	assert.Error(t, err)

	renamed := strings.Replace(string(guest), "proxy_on_configure", "proxy_on_configurX", 1)
	require.NotEqual(t, string(guest), renamed)
	_, err = host.New(ctx, host.Config{Module: []byte(renamed), CompilationCache: cache})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lacks required exports: proxy_on_configure")

	var hooked []host.LogEntry
	h := newHost(t, host.Config{Module: guest, Workers: 1, PluginConfig: []byte("stderr"), VMConfig: []byte("vmcfg"),
		LogHook: func(e host.LogEntry) { hooked = append(hooked, e) }})
	var stderr, vmcfg bool
	for _, l := range h.Logs() {
		stderr = stderr || l.Source == "stderr" && l.Message == "guest wrote to stderr"
		vmcfg = vmcfg || l.Source == "proxy_log" && strings.Contains(l.Message, `vm config "vmcfg"`)
	}
	assert.True(t, stderr, "guest stderr is captured: %v", h.Logs())
	assert.True(t, vmcfg, "the VM configuration reaches proxy_on_vm_start: %v", h.Logs())
	assert.Equal(t, h.Logs(), hooked)
}

func TestGuestPollOneoffENOSYS(t *testing.T) {
	// The unpatched test guest needs poll_oneoff for its GC: with the ENOSYS
	// host it must die (proving the override is in effect) and the host must
	// survive it; with the default host it runs.
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s, _ := command(t, h, 0, "gc:200")
	assert.Equal(t, host.StatusOK, statusOf(t, s))

	h = newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true, PollOneoffENOSYS: true})
	s, err := h.NewStream(0)
	require.NoError(t, err)
	_, err = s.RequestHeaders(reqHeaders([2]string{"x-cmd", "gc:200"}), true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "poll_oneoff")
}

// TestRewrittenGuestSurvivesENOSYSPoll: the same test guest, after the
// build-time rewrite the shipped plugin gets (plugin/wasmpatch), runs 1,000
// forced garbage collections on the ENOSYS host that kills it unrewritten
// (TestGuestPollOneoffENOSYS).
func TestRewrittenGuestSurvivesENOSYSPoll(t *testing.T) {
	patched, rep, err := wasmpatch.Rewrite(guestWasm(t))
	require.NoError(t, err)
	require.True(t, rep.PollOneoff)
	h := newHost(t, host.Config{Module: patched, Workers: 1, DisableTicks: true, PollOneoffENOSYS: true})
	s, _ := command(t, h, 0, "gc:1000")
	assert.Equal(t, host.StatusOK, statusOf(t, s))
	require.NoError(t, h.Failed(0))
}
