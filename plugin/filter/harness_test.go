package filter_test

// One harness, two hosts: every behaviour test runs natively on the SDK's
// proxytest emulator (one worker) and on the built plugin.wasm under the
// project's Envoy-like wazero host (several workers sharing shared data).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tetratelabs/wazero"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/plugin/filter"
	"github.com/meshsession/meshsession/plugin/protocol"
)

const clientAddr = "203.0.113.9:51000"

type request struct {
	method, path string
	headers      [][2]string
	body         []byte
	worker       int // -1: round-robin (wasm); ignored natively
	// app answers when the request reaches the upstream (nil: 200 {"data":"ok"}).
	app func(hdrs [][2]string, body []byte) (int, [][2]string, []byte)
}

type response struct {
	status          int
	headers         [][2]string
	body            []byte
	local           bool        // answered by the filter
	upstreamHeaders [][2]string // what the app saw (nil when not reached)
	// reset: the stream was reset after the response headers went out
	// (Envoy's answer to a local reply then): status and headers are the
	// upstream's, and no body reached the client.
	reset bool
}

// refused reports whether the client was refused: a local reply, or a
// reset before any body.
func (r response) refused() bool { return r.local || r.reset }

func (r response) header(name string) string {
	for _, kv := range r.headers {
		if strings.EqualFold(kv[0], name) {
			return kv[1]
		}
	}
	return ""
}

func (r response) upstreamHeader(name string) (string, bool) {
	for _, kv := range r.upstreamHeaders {
		if strings.EqualFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

type harness interface {
	workers() int
	do(t *testing.T, req request) response
	tickAll(t *testing.T)
	counter(name string) int64
	logs() string
	close()
	// advance moves the filter's clock forward (an interval passes at once).
	advance(d time.Duration)
}

// pluginWasm is the built module (see internal/testenv) and the shared compilation cache.
func pluginWasm(tb testing.TB) ([]byte, wazero.CompilationCache) {
	return testenv.PluginWasm(tb), testenv.CompilationCache()
}

// eachHost runs fn natively and on plugin.wasm with `workers` VMs.
func eachHost(t *testing.T, workers int, fn func(t *testing.T, start func(cfg string, clusters map[string]string) (harness, error))) {
	t.Run("native", func(t *testing.T) {
		fn(t, func(cfg string, clusters map[string]string) (harness, error) {
			return startNative(cfg, clusters)
		})
	})
	t.Run("wasm", func(t *testing.T) {
		module, cache := pluginWasm(t)
		fn(t, func(cfg string, clusters map[string]string) (harness, error) {
			return startWasm(module, cache, workers, cfg, clusters)
		})
	})
}

func mustStart(t *testing.T, start func(string, map[string]string) (harness, error), cfg string, clusters map[string]string) harness {
	t.Helper()
	h, err := start(cfg, clusters)
	require.NoError(t, err)
	t.Cleanup(h.close)
	return h
}

// startStubbed starts a harness with cfg against a new stub sessionsvc.
func startStubbed(t *testing.T, start func(string, map[string]string) (harness, error), cfg string) (harness, *stubSvc) {
	t.Helper()
	stub := newStub(t)
	return mustStart(t, start, cfg, stub.clusters()), stub
}

func startedWith(t *testing.T, start func(string, map[string]string) (harness, error), cfg string, changes ...protocol.Change) harness {
	t.Helper()
	stub := newStub(t)
	for _, c := range changes {
		stub.add(c)
	}
	h := mustStart(t, start, cfg, stub.clusters())
	h.tickAll(t)
	h.tickAll(t)
	return h
}

// refusedAs requires the filter itself to answer req: status with reason.
func refusedAs(t *testing.T, h harness, req request, status int, reason string, msg ...any) {
	t.Helper()
	r := h.do(t, req)
	require.True(t, r.local, msg...)
	require.Equal(t, status, r.status, msg...)
	require.Equal(t, reason, errorReason(t, r), msg...)
}

// nextSync lets a sync interval pass (testConfig's is 100ms) and ticks every
// worker twice: the lease lets one worker fetch, the others adopt its state
// on their next tick.
func nextSync(t *testing.T, h harness) {
	t.Helper()
	h.advance(110 * time.Millisecond)
	h.tickAll(t)
	h.tickAll(t)
}

// everyWorkerRefuses checks that every worker answers a request with tok
// itself: 401 with reason.
func everyWorkerRefuses(t *testing.T, h harness, tok, reason, what string) {
	t.Helper()
	for w := 0; w < h.workers(); w++ {
		refusedAs(t, h, get("/api/x", bearer(tok), w), 401, reason, "%s: worker %d", what, w)
	}
}

// everyWorkerPasses checks that every worker lets a request with tok through.
func everyWorkerPasses(t *testing.T, h harness, tok string) {
	t.Helper()
	for w := 0; w < h.workers(); w++ {
		require.False(t, h.do(t, get("/api/x", bearer(tok), w)).local, "worker %d", w)
	}
}

// ---- native: proxytest ----

var nativeMu sync.Mutex // proxytest holds one emulator per process

type nativeHarness struct {
	*testClock
	host      proxytest.HostEmulator
	reset     func()
	clusters  map[string]string
	processed map[uint32]int
	client    *http.Client
}

func startNative(cfg string, clusters map[string]string) (harness, error) {
	nativeMu.Lock()
	opt := proxytest.NewEmulatorOption().
		WithVMContext(filter.NewVMContext()).
		WithPluginConfiguration([]byte(cfg)).
		WithProperty([]string{"source", "address"}, []byte(clientAddr))
	h, reset := proxytest.NewHostEmulator(opt)
	clk := &testClock{}
	filter.SetClock(clk.Now)
	n := &nativeHarness{testClock: clk, host: h, reset: reset, clusters: clusters, processed: map[uint32]int{},
		client: &http.Client{Timeout: 5 * time.Second}}
	if st := h.StartPlugin(); st != types.OnPluginStartStatusOK {
		msg := strings.Join(h.GetCriticalLogs(), "\n")
		n.close()
		return nil, fmt.Errorf("plugin start failed: %s", msg)
	}
	return n, nil
}

func (n *nativeHarness) close() {
	if n.reset != nil {
		n.reset()
		n.reset = nil
		filter.SetClock(nil)
		nativeMu.Unlock()
	}
}

func (n *nativeHarness) workers() int { return 1 }

// pump performs the callouts the filter dispatched, over real HTTP, until none is left.
func (n *nativeHarness) pump(ids ...uint32) {
	for {
		progressed := false
		for _, id := range append(ids, proxytest.PluginContextID) {
			all := n.host.GetCalloutAttributesFromContext(id)
			for n.processed[id] < len(all) {
				a := all[n.processed[id]]
				n.processed[id]++
				progressed = true
				hdrs, body := n.roundTrip(a)
				n.host.CallOnHttpCallResponse(a.CalloutID, hdrs, nil, body)
			}
		}
		if !progressed {
			return
		}
	}
}

func (n *nativeHarness) roundTrip(a proxytest.HttpCalloutAttribute) ([][2]string, []byte) {
	base, ok := n.clusters[a.Upstream]
	if !ok || base == "" {
		return [][2]string{{":status", "503"}}, []byte("no healthy upstream")
	}
	var method, path string
	var hdr = http.Header{}
	for _, kv := range a.Headers {
		switch kv[0] {
		case ":method":
			method = kv[1]
		case ":path":
			path = kv[1]
		case ":authority":
		default:
			hdr.Add(kv[0], kv[1])
		}
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(a.Body))
	if err != nil {
		return nil, nil
	}
	req.Header = hdr
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, nil // reset: a callback without headers
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := [][2]string{{":status", strconv.Itoa(resp.StatusCode)}}
	for k, vs := range resp.Header {
		for _, v := range vs {
			out = append(out, [2]string{strings.ToLower(k), v})
		}
	}
	return out, body
}

func (n *nativeHarness) do(t *testing.T, req request) response {
	t.Helper()
	h := n.host
	id := h.InitializeHttpContext()
	defer h.CompleteHttpContext(id)
	hdrs := append([][2]string{{":method", req.method}, {":path", req.path}, {":authority", "app.example"}}, req.headers...)
	h.CallOnRequestHeaders(id, hdrs, req.body == nil)
	n.pump(id)
	if lr := h.GetSentLocalResponse(id); lr != nil {
		return localResponse(lr.StatusCode, lr.Headers, lr.Data)
	}
	if req.body != nil {
		h.CallOnRequestBody(id, req.body, true)
		n.pump(id)
		if lr := h.GetSentLocalResponse(id); lr != nil {
			return localResponse(lr.StatusCode, lr.Headers, lr.Data)
		}
	}
	require.Equal(t, types.ActionContinue, h.GetCurrentHttpStreamAction(id), "request left paused")
	up := h.GetCurrentRequestHeaders(id)
	status, rh, rb := answer(req, up)
	h.CallOnResponseHeaders(id, append([][2]string{{":status", strconv.Itoa(status)}}, rh...), rb == nil)
	n.pump(id)
	if rb != nil {
		if lr := h.GetSentLocalResponse(id); lr == nil {
			h.CallOnResponseBody(id, rb, true)
			n.pump(id)
		}
	}
	if lr := h.GetSentLocalResponse(id); lr != nil {
		r := localResponse(lr.StatusCode, lr.Headers, lr.Data)
		r.upstreamHeaders = up
		return r
	}
	require.Equal(t, types.ActionContinue, h.GetCurrentHttpStreamAction(id), "response left paused")
	return response{status: status, headers: h.GetCurrentResponseHeaders(id), body: h.GetCurrentResponseBody(id), upstreamHeaders: up}
}

func (n *nativeHarness) tickAll(t *testing.T) {
	n.host.Tick()
	n.pump()
}

func (n *nativeHarness) counter(name string) int64 {
	v, err := n.host.GetCounterMetric(name)
	if err != nil {
		return 0
	}
	return int64(v)
}

func (n *nativeHarness) logs() string {
	h := n.host
	var all []string
	for _, l := range [][]string{h.GetDebugLogs(), h.GetInfoLogs(), h.GetWarnLogs(), h.GetErrorLogs(), h.GetCriticalLogs()} {
		all = append(all, l...)
	}
	return strings.Join(all, "\n")
}

func localResponse(status uint32, hdrs [][2]string, body []byte) response {
	return response{status: int(status), headers: hdrs, body: body, local: true}
}

func answer(req request, up [][2]string) (int, [][2]string, []byte) {
	if req.app != nil {
		return req.app(up, req.body)
	}
	return 200, [][2]string{{"content-type", "application/json"}}, []byte(`{"data":"ok"}`)
}

// ---- wasm: plugin.wasm on the project's host ----

type wasmHarness struct {
	*testClock
	h *host.Host
	// parked is how many callouts settle leaves in flight: a sync
	// long-poll parked at a sessionsvc that long-polls (push_test.go).
	parked int
}

func startWasm(module []byte, cache wazero.CompilationCache, workers int, cfg string, clusters map[string]string) (harness, error) {
	cl := map[string]host.Cluster{}
	for name, url := range clusters {
		cl[name] = host.Cluster{URL: url, Timeout: 5 * time.Second}
	}
	debug := host.LogDebug
	clk := &testClock{}
	h, err := host.New(context.Background(), host.Config{
		Module: module, Workers: workers, VMID: "meshsession", RootID: "meshsession",
		PluginConfig: []byte(cfg), Clusters: cl, DisableTicks: true, CompilationCache: cache,
		LogLevel: &debug, Now: clk.Now,
	})
	if err != nil {
		return nil, err
	}
	return &wasmHarness{testClock: clk, h: h}, nil
}

func (w *wasmHarness) close()       { _ = w.h.Close(context.Background()) }
func (w *wasmHarness) workers() int { return w.h.Workers() }

func (w *wasmHarness) tickAll(t *testing.T) {
	t.Helper()
	for i := 0; i < w.h.Workers(); i++ {
		require.NoError(t, w.h.Tick(i))
	}
	// Callout answers arrive asynchronously on each worker: let them land.
	w.settle(t)
}

// settle waits until no callout is in flight but the parked ones (bounded).
func (w *wasmHarness) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.h.PendingCallouts() > w.parked {
		if time.Now().After(deadline) {
			t.Fatalf("callouts still pending after 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// step delivers one callback result; if it paused at the end of a phase it
// waits for the filter to resume the given direction or answer locally.
func (w *wasmHarness) wait(t *testing.T, s *host.Stream, dir host.StreamType) (*host.LocalResponse, bool) {
	t.Helper()
	ev := waitFor(t, s, "stream left paused", func(ev host.Event) bool {
		return ev.Kind == host.EventLocalResponse || ev.Kind == host.EventClose || ev.Kind == host.EventContinue && ev.Stream == dir
	})
	if ev.Kind != host.EventLocalResponse {
		return nil, ev.Kind == host.EventClose
	}
	return ev.LocalResponse, false
}

// waitFor waits, 5 s at most in all, for the first event of s that done
// accepts; what says what went wrong when none comes.
func waitFor(t *testing.T, s *host.Stream, what string, done func(host.Event) bool) host.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		ev, err := s.Wait(ctx)
		require.NoError(t, err, what)
		if done(ev) {
			return ev
		}
	}
}

func (w *wasmHarness) do(t *testing.T, req request) response {
	t.Helper()
	s, err := w.h.NewStream(req.worker)
	require.NoError(t, err)
	defer func() {
		require.NoError(t, s.Finish())
		w.settle(t) // fire-and-forget callouts (failed-login reports) land before the test looks
		require.Zero(t, w.h.ContinueMisuses(), "proxy_continue_stream Envoy asserts against:\n%s", w.logs())
	}()
	s.SetDownstream(clientAddr, "127.0.0.1:10000")
	hdrs := append([][2]string{{":method", req.method}, {":path", req.path}, {":authority", "app.example"}, {":scheme", "http"}}, req.headers...)
	res, err := s.RequestHeaders(hdrs, req.body == nil)
	require.NoError(t, err)
	if res.LocalResponse != nil {
		return localResponse(res.LocalResponse.Status, res.LocalResponse.Headers, res.LocalResponse.Body)
	}
	if req.body != nil {
		res, err = s.RequestBody(req.body, true)
		require.NoError(t, err)
		if res.LocalResponse != nil {
			return localResponse(res.LocalResponse.Status, res.LocalResponse.Headers, res.LocalResponse.Body)
		}
	}
	if res.Action == host.ActionPause {
		lr, reset := w.wait(t, s, host.StreamRequest)
		require.False(t, reset, "request stream reset by the filter")
		if lr != nil {
			return localResponse(lr.Status, lr.Headers, lr.Body)
		}
	}
	up := s.RequestHeaderPairs()
	status, rh, rb := answer(req, up)
	res, err = s.ResponseHeaders(append([][2]string{{":status", strconv.Itoa(status)}}, rh...), rb == nil)
	require.NoError(t, err)
	if res.LocalResponse == nil && !res.Reset && rb != nil {
		res, err = s.ResponseBody(rb, true)
		require.NoError(t, err)
	}
	if res.LocalResponse == nil && !res.Reset && res.Action == host.ActionPause {
		lr, reset := w.wait(t, s, host.StreamResponse)
		res.LocalResponse, res.Reset = lr, reset
	}
	if res.Reset {
		return response{status: status, headers: s.ResponseHeaderPairs(), reset: true, upstreamHeaders: up}
	}
	if lr := res.LocalResponse; lr != nil {
		r := localResponse(lr.Status, lr.Headers, lr.Body)
		r.upstreamHeaders = up
		return r
	}
	body := s.ResponseBodyBytes()
	if rb == nil {
		body = nil
	}
	return response{status: status, headers: s.ResponseHeaderPairs(), body: body, upstreamHeaders: up}
}

func (w *wasmHarness) counter(name string) int64 {
	m, ok := w.h.Metrics().Get(name)
	if !ok {
		return 0
	}
	return m.Value
}

func (w *wasmHarness) logs() string {
	var b strings.Builder
	for _, l := range w.h.Logs() {
		fmt.Fprintf(&b, "[w%d %s] %s\n", l.Worker, l.Level, l.Message)
	}
	return b.String()
}
