package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Cluster is an upstream the plugin can reach with proxy_http_call, by name.
type Cluster struct {
	// URL is the base URL (scheme://host:port) requests go to; the callout's
	// :path is appended. An empty URL is a cluster without healthy hosts:
	// every call gets Envoy's 503 "no healthy upstream".
	URL string
	// Timeout applies when the guest passes a timeout of 0 (0: none).
	Timeout time.Duration
	// ConnectTimeout bounds connection setup (default 5 s, Envoy's default).
	ConnectTimeout time.Duration
}

// Config configures a Host.
type Config struct {
	// Module is the compiled .wasm binary.
	Module []byte
	// Workers is the number of worker VMs (default 2), like Envoy's --concurrency.
	Workers int
	// VMID selects the shared-data store and queues; RootID is the plugin's
	// root_id; Name is plugin_name (default RootID).
	VMID, RootID, Name string
	// VMConfig and PluginConfig are the VM's and the plugin's configuration
	// (what Envoy passes as vm_config.configuration and configuration).
	VMConfig, PluginConfig []byte
	// Clusters maps cluster names to upstreams for proxy_http_call.
	Clusters map[string]Cluster
	// Properties are host-wide properties (e.g. "node.id"), dotted paths to
	// serialised values (see PropertyString, PropertyInt).
	Properties map[string][]byte
	// Logger receives the guest's logs (default: discard).
	Logger *slog.Logger
	// LogLevel is the minimum proxy_log level kept (default LogInfo as Envoy's
	// default). Levels below it are dropped without reading guest memory.
	LogLevel *LogLevel
	// LogHook, if set, is called for every guest log line (from any worker,
	// under that worker's lock: it must not call back into the Host).
	LogHook func(LogEntry)
	// PollOneoffENOSYS makes the host's WASI poll_oneoff answer ENOSYS (52),
	// as Envoy builds before PR #45756 do.
	PollOneoffENOSYS bool
	// AllowOnHeadersStopIteration is Envoy's
	// PluginConfig.allow_on_headers_stop_iteration (Envoy 1.35 and later,
	// default false): a headers callback answering Pause stops only the
	// headers (StopIteration) and the body callbacks still reach the filter.
	// Without it (every older Envoy, Istio's WasmPlugin, Envoy Gateway),
	// proxy-wasm-cpp-host turns that Pause into StopAllIterationAndWatermark:
	// no body or trailers callback reaches the filter until it calls
	// proxy_continue_stream itself.
	AllowOnHeadersStopIteration bool
	// DisableTicks stops the real tick timers; ticks then only happen through
	// Host.Tick. Default: real timers.
	DisableTicks bool
	// FailurePolicy is what the embedder should do when a VM has failed; with
	// FailReload the Host recreates a failed VM for the next stream.
	FailurePolicy FailurePolicy
	// Process shares shared data and queues with other Hosts (one Envoy
	// process hosting several plugins). Default: a new Process.
	Process *Process
	// HTTPClientTransport overrides the transport of http_call (tests).
	HTTPClientTransport http.RoundTripper
	// CompilationCache lets several Hosts share compiled code (wazero's
	// in-memory or on-disk cache), e.g. across tests. Default: none.
	CompilationCache wazero.CompilationCache
	// Now, if set, is the clock proxy_get_current_time_nanoseconds reads, so
	// tests can advance the guest's time as Envoy's own tests do with a
	// simulated TimeSource (source/extensions/common/wasm/context.cc reads
	// time_source_.systemTime()). WASI's clocks stay real. Default time.Now.
	Now func() time.Time
}

// Host runs N worker VMs of one proxy-wasm module.
type Host struct {
	cfg      Config
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	proc     *Process
	shared   *SharedData
	metrics  *Metrics
	logs     *logBook
	logLevel LogLevel
	clusters map[string]*cluster

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards workers slice entries (reload)
	workers []*worker
	next    atomic.Uint32
	closed  atomic.Bool
	// inflight counts callouts not yet answered to the guest (PendingCallouts).
	inflight atomic.Int64
	// calloutCallbacks sums the wall time of proxy_on_http_call_response
	// calls, in nanoseconds (CalloutCallbackTime).
	calloutCallbacks    atomic.Int64
	calloutCallbacksCPU atomic.Int64
	// continueMisuses counts proxy_continue_stream calls on a direction the
	// filter had not stopped (ContinueMisuses).
	continueMisuses atomic.Int64
}

// ContinueMisuses is how many times a guest called proxy_continue_stream on
// a direction it had not stopped, or from a callback that then answered
// Continue. Envoy asserts against it (filter_manager.cc commonContinue:
// "Attempting to continue iteration while the IterationState is already
// Continue"); release builds may iterate the buffered data twice. Each is
// also logged as a host warning.
func (h *Host) ContinueMisuses() int64 { return h.continueMisuses.Load() }

// CalloutCallbackTime is the time the VMs have spent in
// proxy_on_http_call_response so far: the guest's own work on callout
// answers (a sync page applied and published), without the network and the
// upstream's.
func (h *Host) CalloutCallbackTime() time.Duration { return time.Duration(h.calloutCallbacks.Load()) }

// CalloutCallbackCPU is CalloutCallbackTime in CPU time of the thread that
// ran the guest (Linux; 0 elsewhere): on a loaded machine, the guest's
// work without the time it waited for a core.
func (h *Host) CalloutCallbackCPU() time.Duration { return time.Duration(h.calloutCallbacksCPU.Load()) }

// memoryLimitPages bounds a VM's linear memory (64 KiB pages).
const memoryLimitPages = 16384

// ErrVMFailed is wrapped by every error returned for a call on a failed VM.
var ErrVMFailed = errors.New("wasm VM failed")

// ErrClosed is returned for calls after Close.
var ErrClosed = errors.New("host closed")

// VMError describes a guest failure: a trap, a panic, proc_exit, or a start
// refused by proxy_on_vm_start / proxy_on_configure.
type VMError struct {
	Worker int
	Call   string // the guest export that failed
	Err    error  // wazero's error, or a description of the refusal
	// GuestOutput is the guest's last log and stderr lines.
	GuestOutput string
}

func (e *VMError) Error() string {
	msg := fmt.Sprintf("wasm VM %d: %s: %v", e.Worker, e.Call, e.Err)
	if e.GuestOutput != "" {
		msg += "\nguest output:\n" + e.GuestOutput
	}
	return msg
}

func (e *VMError) Unwrap() []error { return []error{ErrVMFailed, e.Err} }

var requiredExports = []string{
	"_initialize", "proxy_on_memory_allocate", "proxy_on_context_create",
	"proxy_on_vm_start", "proxy_on_configure",
}

// New compiles the module once and starts cfg.Workers VMs of it: for each,
// _initialize, proxy_on_context_create(root, 0), proxy_on_vm_start and
// proxy_on_configure. A refused start is a *VMError quoting the guest's last
// log lines.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if len(cfg.Module) == 0 {
		return nil, errors.New("new host: empty module")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Name == "" {
		cfg.Name = cfg.RootID
	}
	if cfg.Process == nil {
		cfg.Process = NewProcess()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Host{
		cfg:      cfg,
		proc:     cfg.Process,
		shared:   cfg.Process.SharedData(cfg.VMID),
		metrics:  newMetrics(),
		logs:     &logBook{logger: cfg.Logger, hook: cfg.LogHook},
		logLevel: LogInfo,
	}
	if cfg.LogLevel != nil {
		h.logLevel = *cfg.LogLevel
	}
	var err error
	if h.clusters, err = newClusters(cfg.Clusters, cfg.HTTPClientTransport); err != nil {
		return nil, fmt.Errorf("new host: %w", err)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())

	// A VM's linear memory is reserved whole (memoryAllocator), so its
	// maximum is bounded: 1 GiB, unless the module declares less.
	rc := wazero.NewRuntimeConfigCompiler().WithMemoryLimitPages(memoryLimitPages)
	if cfg.CompilationCache != nil {
		rc = rc.WithCompilationCache(cfg.CompilationCache)
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (*Host, error) {
		h.cancel()
		_ = h.rt.Close(ctx)
		return nil, err
	}
	if h.compiled, err = h.rt.CompileModule(ctx, cfg.Module); err != nil {
		return fail(fmt.Errorf("compile wasm module: %w", err))
	}
	if err := checkExports(h.compiled); err != nil {
		return fail(err)
	}
	if err := instantiateWASI(ctx, h.rt, cfg.PollOneoffENOSYS); err != nil {
		return fail(fmt.Errorf("instantiate wasi_snapshot_preview1: %w", err))
	}
	if err := h.instantiateEnv(ctx); err != nil {
		return fail(fmt.Errorf("instantiate env host module: %w", err))
	}
	h.workers = make([]*worker, cfg.Workers)
	for i := range h.workers {
		w, err := h.startWorker(ctx, i, 0)
		if err != nil {
			for _, w := range h.workers[:i] {
				w.stop()
			}
			return fail(fmt.Errorf("start worker %d: %w", i, err))
		}
		h.workers[i] = w
	}
	return h, nil
}

func checkExports(c wazero.CompiledModule) error {
	exports := c.ExportedFunctions()
	var missing []string
	for _, name := range requiredExports {
		if _, ok := exports[name]; !ok {
			missing = append(missing, name)
		}
	}
	if _, ok := exports["proxy_abi_version_0_2_0"]; !ok {
		if _, ok := exports["proxy_abi_version_0_2_1"]; !ok {
			missing = append(missing, "proxy_abi_version_0_2_0 (or _0_2_1)")
		}
	}
	if _, ok := c.ExportedMemories()["memory"]; !ok {
		missing = append(missing, "memory")
	}
	if len(missing) > 0 {
		return fmt.Errorf("wasm module lacks required exports: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Close shuts every VM down as Envoy does at shutdown (proxy_on_done, then
// proxy_on_delete on each root context), cancels in-flight callouts and frees
// the runtime.
func (h *Host) Close(ctx context.Context) error {
	if h.closed.Swap(true) {
		return nil
	}
	h.mu.Lock()
	workers := append([]*worker(nil), h.workers...)
	h.mu.Unlock()
	for _, w := range workers {
		w.shutdown()
	}
	h.cancel()
	h.wg.Wait()
	for _, w := range workers {
		w.stop()
	}
	if err := h.rt.Close(ctx); err != nil {
		return fmt.Errorf("close wazero runtime: %w", err)
	}
	return nil
}

// Workers is the number of worker VMs.
func (h *Host) Workers() int { return len(h.workers) }

// FailurePolicy is the configured failure policy, for the embedder to apply
// when a call returns an error wrapping ErrVMFailed.
func (h *Host) FailurePolicy() FailurePolicy { return h.cfg.FailurePolicy }

// SharedData returns the store of vmID in this host's process.
func (h *Host) SharedData(vmID string) *SharedData { return h.proc.SharedData(vmID) }

// Process returns the process-wide registry (shared data and queues).
func (h *Host) Process() *Process { return h.proc }

// Metrics returns the metrics the guest defined.
func (h *Host) Metrics() *Metrics { return h.metrics }

// Logs returns the last guest log lines (at most 2,000), oldest first.
func (h *Host) Logs() []LogEntry { return h.logs.all() }

// Failed reports the error that failed worker i, or nil if it is healthy.
func (h *Host) Failed(i int) error {
	w, err := h.worker(i)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// Tick calls proxy_on_tick on worker i's root context now.
func (h *Host) Tick(i int) error {
	w, err := h.worker(i)
	if err != nil {
		return err
	}
	return w.tick()
}

// TickPeriod is the tick period worker i's guest asked for (0: none).
func (h *Host) TickPeriod(i int) (time.Duration, error) {
	w, err := h.worker(i)
	if err != nil {
		return 0, err
	}
	return time.Duration(w.tickPeriod.Load()), nil
}

// MemoryPages is the size of worker i's linear memory in 64 KiB pages.
func (h *Host) MemoryPages(i int) (uint32, error) {
	w, err := h.worker(i)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mem == nil {
		return 0, ErrClosed
	}
	return w.mem.Size() / 65536, nil
}

// Call runs an exported guest function on worker i under the worker's lock
// (an escape hatch for tests, e.g. to call an unknown context id).
func (h *Host) Call(i int, name string, args ...uint64) ([]uint64, error) {
	w, err := h.worker(i)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return nil, err
	}
	fn, ok := w.extra[name]
	if !ok {
		if fn = w.mod.ExportedFunction(name); fn == nil {
			return nil, fmt.Errorf("call %s: no such export", name)
		}
		w.extra[name] = fn
	}
	w.cur, w.effective = nil, 0
	w.out.reset()
	res, err := fn.Call(w.ctx, args...)
	if err != nil {
		return nil, w.fail(name, err)
	}
	return res, nil
}

func (h *Host) worker(i int) (*worker, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	if i < 0 || i >= len(h.workers) {
		return nil, fmt.Errorf("worker %d out of range [0,%d)", i, len(h.workers))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.workers[i], nil
}

// pickWorker returns worker i, or the next one round-robin when i < 0. With
// FailReload, a failed worker is recreated first.
func (h *Host) pickWorker(i int) (*worker, error) {
	if i < 0 {
		i = int(h.next.Add(1)-1) % len(h.workers)
	}
	w, err := h.worker(i)
	if err != nil {
		return nil, err
	}
	if h.cfg.FailurePolicy == FailReload && w.isFailed() {
		return h.reload(i, w)
	}
	return w, nil
}

func (h *Host) reload(i int, old *worker) (*worker, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.workers[i] != old { // reloaded meanwhile
		return h.workers[i], nil
	}
	old.stop()
	w, err := h.startWorker(h.ctx, i, old.gen+1)
	if err != nil {
		return nil, fmt.Errorf("reload worker %d: %w", i, err)
	}
	h.workers[i] = w
	h.logs.add(LogEntry{Time: time.Now(), Worker: i, Level: LogWarn, Source: "host",
		Message: "VM reloaded after failure (FAIL_RELOAD)"})
	return w, nil
}

type workerKey struct{}

// worker is one VM: a module instance with its own linear memory. All guest
// calls into it are serialised by mu.
type worker struct {
	h   *Host
	idx int
	gen int
	ctx context.Context // carries the worker for host functions

	// headerNames interns the header names the guest mutates (see
	// headerKey): the filter sets the same few on every request.
	headerNames []headerName

	mu        sync.Mutex
	mod       api.Module
	mem       api.Memory
	fns       guestFuncs
	extra     map[string]api.Function // Host.Call's functions
	stack     [8]uint64
	astack    [1]uint64 // proxy_on_memory_allocate, nested in host calls
	failed    error
	closed    bool // shut down: no more guest calls
	modClosed bool
	failCh    chan struct{} // closed when the VM fails or stops

	rootID      uint32
	nextCtxID   uint32
	streams     map[uint32]*Stream
	cur         *Stream // stream whose callback runs; nil: root context
	effective   uint32  // proxy_set_effective_context override, 0: none
	phase       string  // "vm_start", "configure", ... (for config buffers)
	callout     *calloutResponse
	nextCallout uint32
	rootProps   map[string][]byte
	tail        tail
	out         callOutput
	stdout      *lineWriter
	stderr      *lineWriter
	doneCh      chan struct{} // proxy_done during shutdown

	tickPeriod atomic.Int64 // nanoseconds
	tickReset  chan struct{}
	tickStop   chan struct{}
	tickDone   chan struct{}
}

type guestFuncs struct {
	initialize, alloc, contextCreate, vmStart, configure  api.Function
	requestHeaders, requestBody, requestTrailers          api.Function
	responseHeaders, responseBody, responseTrailers       api.Function
	done, log, delete, tick, queueReady, httpCallResponse api.Function
}

func (h *Host) startWorker(ctx context.Context, idx, gen int) (*worker, error) {
	w := &worker{
		h: h, idx: idx, gen: gen,
		streams:   map[uint32]*Stream{},
		extra:     map[string]api.Function{},
		rootProps: map[string][]byte{},
		failCh:    make(chan struct{}),
		tickReset: make(chan struct{}, 1),
		tickStop:  make(chan struct{}),
		tickDone:  make(chan struct{}),
	}
	w.ctx = context.WithValue(context.Background(), workerKey{}, w)
	w.stdout = &lineWriter{w: w, source: "stdout", level: LogInfo}
	w.stderr = &lineWriter{w: w, source: "stderr", level: LogError}
	mc := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("worker-%d-%d", idx, gen)).
		WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(w.stdout).WithStderr(w.stderr)

	w.mu.Lock()
	defer w.mu.Unlock()
	mod, err := h.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, memoryAllocator()), h.compiled, mc)
	if err != nil {
		close(w.tickDone)
		return nil, fmt.Errorf("instantiate wasm module: %w", err)
	}
	w.mod, w.mem = mod, mod.Memory()
	f := mod.ExportedFunction
	w.fns = guestFuncs{
		initialize: f("_initialize"), alloc: f("proxy_on_memory_allocate"),
		contextCreate: f("proxy_on_context_create"), vmStart: f("proxy_on_vm_start"),
		configure:      f("proxy_on_configure"),
		requestHeaders: f("proxy_on_request_headers"), requestBody: f("proxy_on_request_body"),
		requestTrailers: f("proxy_on_request_trailers"),
		responseHeaders: f("proxy_on_response_headers"), responseBody: f("proxy_on_response_body"),
		responseTrailers: f("proxy_on_response_trailers"),
		done:             f("proxy_on_done"), log: f("proxy_on_log"), delete: f("proxy_on_delete"),
		tick: f("proxy_on_tick"), queueReady: f("proxy_on_queue_ready"),
		httpCallResponse: f("proxy_on_http_call_response"),
	}
	startErr := func(err error) (*worker, error) {
		close(w.tickDone)
		_ = w.mod.Close(context.Background())
		return nil, err
	}
	if _, err := w.call("_initialize", w.fns.initialize); err != nil {
		return startErr(err)
	}
	w.rootID = w.newContextID()
	if _, err := w.call("proxy_on_context_create", w.fns.contextCreate, uint64(w.rootID), 0); err != nil {
		return startErr(err)
	}
	w.phase = "vm_start"
	ok, err := w.call("proxy_on_vm_start", w.fns.vmStart, uint64(w.rootID), uint64(len(h.cfg.VMConfig)))
	if err != nil {
		return startErr(err)
	}
	if uint32(ok) == 0 {
		return startErr(w.refused("proxy_on_vm_start"))
	}
	w.phase = "configure"
	ok, err = w.call("proxy_on_configure", w.fns.configure, uint64(w.rootID), uint64(len(h.cfg.PluginConfig)))
	if err != nil {
		return startErr(err)
	}
	if uint32(ok) == 0 {
		return startErr(w.refused("proxy_on_configure"))
	}
	w.phase = ""
	go w.ticker()
	return w, nil
}

func (w *worker) refused(call string) error {
	err := &VMError{Worker: w.idx, Call: call, Err: errors.New("plugin refused to start (returned false)"),
		GuestOutput: w.output()}
	w.failed = err
	close(w.failCh)
	return err
}

// output is the guest's output during the last call, or its last lines
// before it when the call printed nothing.
func (w *worker) output() string {
	w.stdout.flush()
	w.stderr.flush()
	if len(w.out.head) > 0 {
		return w.out.String()
	}
	return w.tail.String()
}

func (w *worker) newContextID() uint32 {
	w.nextCtxID++
	return w.nextCtxID
}

// call runs a guest export; the caller holds w.mu. A missing optional export
// is a no-op returning 0 (Envoy skips callbacks a module does not export).
func (w *worker) call(name string, fn api.Function, args ...uint64) (uint64, error) {
	if fn == nil {
		return 0, nil
	}
	n := len(args)
	if n == 0 {
		n = 1
	}
	copy(w.stack[:], args)
	w.out.reset()
	if err := fn.CallWithStack(w.ctx, w.stack[:n]); err != nil {
		return 0, w.fail(name, err)
	}
	return w.stack[0], nil
}

// fail marks the VM failed (as Envoy does after a trap). Caller holds w.mu.
func (w *worker) fail(call string, err error) error {
	verr := &VMError{Worker: w.idx, Call: call, Err: err, GuestOutput: w.output()}
	if w.failed == nil {
		w.failed = verr
		close(w.failCh)
		w.h.logs.add(LogEntry{Time: time.Now(), Worker: w.idx, Level: LogCritical, Source: "host",
			Message: verr.Error()})
	}
	return verr
}

func (w *worker) usable() error {
	if w.closed {
		return ErrClosed
	}
	if w.failed != nil {
		return fmt.Errorf("%w (earlier failure: %v)", ErrVMFailed, w.failed)
	}
	return nil
}

func (w *worker) isFailed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed != nil
}

func (w *worker) guestLine(level LogLevel, source, msg string) {
	w.tail.add(source + ": " + msg)
	w.out.add(source + ": " + msg)
	w.h.logs.add(LogEntry{Time: time.Now(), Worker: w.idx, Level: level, Source: source, Message: msg})
}

// shutdown runs proxy_on_done on the root context; if the guest answers
// false, it waits (briefly) for proxy_done; then proxy_on_delete.
func (w *worker) shutdown() {
	w.mu.Lock()
	if w.usable() != nil {
		w.mu.Unlock()
		return
	}
	w.cur, w.effective = nil, 0
	ok, err := w.call("proxy_on_done", w.fns.done, uint64(w.rootID))
	if err == nil && w.fns.done != nil && uint32(ok) == 0 {
		w.doneCh = make(chan struct{})
		ch := w.doneCh
		w.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
		w.mu.Lock()
	}
	if w.usable() == nil {
		w.cur, w.effective = nil, 0
		_, _ = w.call("proxy_on_delete", w.fns.delete, uint64(w.rootID))
	}
	if !w.closed {
		w.closed = true
		if w.failed == nil {
			close(w.failCh)
		}
	}
	w.mu.Unlock()
}

// stop ends the ticker and closes the module instance.
func (w *worker) stop() {
	select {
	case <-w.tickStop:
	default:
		close(w.tickStop)
	}
	<-w.tickDone
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.modClosed {
		return
	}
	w.modClosed = true
	if !w.closed && w.failed == nil {
		close(w.failCh)
	}
	w.closed = true
	_ = w.mod.Close(context.Background())
}

func (w *worker) ticker() {
	defer close(w.tickDone)
	for {
		var timer *time.Timer
		var fire <-chan time.Time
		if p := time.Duration(w.tickPeriod.Load()); p > 0 && !w.h.cfg.DisableTicks {
			timer = time.NewTimer(p)
			fire = timer.C
		}
		select {
		case <-w.tickStop:
			if timer != nil {
				timer.Stop()
			}
			return
		case <-w.tickReset:
			if timer != nil {
				timer.Stop()
			}
		case <-fire:
			if err := w.tick(); err != nil {
				if errors.Is(err, ErrVMFailed) || errors.Is(err, ErrClosed) {
					return
				}
			}
		}
	}
}

func (w *worker) tick() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.cur, w.effective = nil, 0
	_, err := w.call("proxy_on_tick", w.fns.tick, uint64(w.rootID))
	return err
}

// async runs fn under the worker's lock on another goroutine (http_call
// responses, queue notifications), unless the worker has failed or stopped.
func (w *worker) async(fn func()) {
	h := w.h
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.usable() != nil {
			return
		}
		fn()
	}()
}
