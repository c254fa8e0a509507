package host

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is the Go body of an env.proxy_* import. stack holds the
// parameters; the returned Status is the function's single i32 result.
type hostFunc func(ctx context.Context, w *worker, stack []uint64) Status

type hostFuncDef struct {
	name   string
	params []api.ValueType
	fn     hostFunc
}

func params(n int) []api.ValueType {
	p := make([]api.ValueType, n)
	for i := range p {
		p[i] = i32
	}
	return p
}

// instantiateEnv registers every env.proxy_* host function without
// reflection (GoModuleFunc with explicit types).
func (h *Host) instantiateEnv(ctx context.Context) error {
	b := h.rt.NewHostModuleBuilder("env")
	results := []api.ValueType{i32}
	for _, d := range hostFuncDefs() {
		fn := d.fn
		// GoFunc, not GoModuleFunc: the worker comes from ctx, so wazero
		// need not look up the calling module on every call.
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
			w, ok := ctx.Value(workerKey{}).(*worker)
			if !ok {
				stack[0] = uint64(StatusInternalFailure)
				return
			}
			stack[0] = uint64(fn(ctx, w, stack))
		}), d.params, results).Export(d.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func u32(v uint64) uint32 { return uint32(v) }

func hostFuncDefs() []hostFuncDef {
	unimplemented := func(context.Context, *worker, []uint64) Status { return StatusUnimplemented }
	return []hostFuncDef{
		{"proxy_log", params(3), proxyLog},
		{"proxy_get_status", params(3), proxyGetStatus},
		{"proxy_set_tick_period_milliseconds", params(1), proxySetTickPeriod},
		{"proxy_get_current_time_nanoseconds", params(1), proxyGetCurrentTime},
		{"proxy_get_property", params(4), proxyGetProperty},
		{"proxy_set_property", params(4), proxySetProperty},
		{"proxy_send_local_response", params(8), proxySendLocalResponse},
		{"proxy_get_shared_data", params(5), proxyGetSharedData},
		{"proxy_set_shared_data", params(5), proxySetSharedData},
		{"proxy_register_shared_queue", params(3), proxyRegisterSharedQueue},
		{"proxy_resolve_shared_queue", params(5), proxyResolveSharedQueue},
		{"proxy_dequeue_shared_queue", params(3), proxyDequeueSharedQueue},
		{"proxy_enqueue_shared_queue", params(3), proxyEnqueueSharedQueue},
		{"proxy_get_header_map_value", params(5), proxyGetHeaderMapValue},
		{"proxy_add_header_map_value", params(5), proxyAddHeaderMapValue},
		{"proxy_replace_header_map_value", params(5), proxyReplaceHeaderMapValue},
		{"proxy_remove_header_map_value", params(3), proxyRemoveHeaderMapValue},
		{"proxy_get_header_map_pairs", params(3), proxyGetHeaderMapPairs},
		{"proxy_set_header_map_pairs", params(3), proxySetHeaderMapPairs},
		{"proxy_get_header_map_size", params(2), proxyGetHeaderMapSize},
		{"proxy_get_buffer_status", params(3), proxyGetBufferStatus},
		{"proxy_get_buffer_bytes", params(5), proxyGetBufferBytes},
		{"proxy_set_buffer_bytes", params(5), proxySetBufferBytes},
		{"proxy_http_call", params(10), proxyHTTPCall},
		{"proxy_grpc_call", params(12), unimplemented},
		{"proxy_grpc_stream", params(9), unimplemented},
		{"proxy_grpc_send", params(4), unimplemented},
		{"proxy_grpc_cancel", params(1), unimplemented},
		{"proxy_grpc_close", params(1), unimplemented},
		{"proxy_define_metric", params(4), proxyDefineMetric},
		{"proxy_increment_metric", []api.ValueType{i32, i64}, proxyIncrementMetric},
		{"proxy_record_metric", []api.ValueType{i32, i64}, proxyRecordMetric},
		{"proxy_get_metric", params(2), proxyGetMetric},
		{"proxy_set_effective_context", params(1), proxySetEffectiveContext},
		{"proxy_done", params(0), proxyDone},
		{"proxy_call_foreign_function", params(6), proxyCallForeignFunction},
		{"proxy_continue_stream", params(1), proxyContinueStream},
		{"proxy_close_stream", params(1), proxyCloseStream},
	}
}

// --- guest memory helpers ---

// read returns a view of guest memory; ok is false when out of bounds.
func (w *worker) read(ptr, size uint64) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return w.mem.Read(u32(ptr), u32(size))
}

func (w *worker) readString(ptr, size uint64) (string, bool) {
	b, ok := w.read(ptr, size)
	return string(b), ok
}

// allocate asks the guest for size bytes with proxy_on_memory_allocate. A trap
// in the allocator aborts the whole guest call (the VM is then failed).
func (w *worker) allocate(ctx context.Context, size int) (uint32, bool) {
	if w.fns.alloc == nil || size > math.MaxInt32 {
		return 0, false
	}
	w.astack[0] = uint64(size)
	if err := w.fns.alloc.CallWithStack(ctx, w.astack[:]); err != nil {
		panic(fmt.Errorf("proxy_on_memory_allocate(%d): %w", size, err))
	}
	addr := uint32(w.astack[0])
	return addr, addr != 0
}

// reserve allocates size bytes of guest memory and returns them for the
// host to fill (nil and address 0 for size 0, as Envoy's copyToPointerSize).
func (w *worker) reserve(ctx context.Context, size int) ([]byte, uint32, Status) {
	if size == 0 {
		return nil, 0, StatusOK
	}
	addr, ok := w.allocate(ctx, size)
	if !ok {
		return nil, 0, StatusInvalidMemoryAccess
	}
	buf, ok := w.mem.Read(addr, uint32(size))
	if !ok {
		return nil, 0, StatusInvalidMemoryAccess
	}
	return buf, addr, StatusOK
}

// storeOut stores a reserved buffer's address and size at the guest's
// out-pointers.
func (w *worker) storeOut(addr uint32, size int, ptrPtr, sizePtr uint64) Status {
	if !w.mem.WriteUint32Le(u32(ptrPtr), addr) || !w.mem.WriteUint32Le(u32(sizePtr), uint32(size)) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// out32 and out64 store v at the guest's out-pointer ptr (little-endian):
// InvalidMemoryAccess when ptr is out of bounds.
func (w *worker) out32(ptr uint64, v uint32) Status {
	if !w.mem.WriteUint32Le(u32(ptr), v) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func (w *worker) out64(ptr uint64, v uint64) Status {
	if !w.mem.WriteUint64Le(u32(ptr), v) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// copyOut writes data into freshly allocated guest memory and stores its
// address and size at the guest's out-pointers.
func (w *worker) copyOut(ctx context.Context, data []byte, ptrPtr, sizePtr uint64) Status {
	buf, addr, st := w.reserve(ctx, len(data))
	if st != StatusOK {
		return st
	}
	copy(buf, data)
	return w.storeOut(addr, len(data), ptrPtr, sizePtr)
}

// copyOutString is copyOut for a string, without converting it.
func (w *worker) copyOutString(ctx context.Context, data string, ptrPtr, sizePtr uint64) Status {
	buf, addr, st := w.reserve(ctx, len(data))
	if st != StatusOK {
		return st
	}
	copy(buf, data)
	return w.storeOut(addr, len(data), ptrPtr, sizePtr)
}

// copyOutPairs serialises pairs straight into guest memory (no copy on the
// way); an empty map yields 0/0.
func (w *worker) copyOutPairs(ctx context.Context, m *headerMap, ptrPtr, sizePtr uint64) Status {
	size := 0
	if m != nil && len(m.pairs) > 0 {
		size = pairsLen(m.pairs)
	}
	buf, addr, st := w.reserve(ctx, size)
	if st != StatusOK {
		return st
	}
	if size > 0 {
		encodePairsInto(buf, m.pairs)
	}
	return w.storeOut(addr, size, ptrPtr, sizePtr)
}

// target is the stream host calls act on: the effective context if set,
// else the stream whose callback runs; nil for the root context.
func (w *worker) target() *Stream {
	if w.effective != 0 {
		if w.effective == w.rootID {
			return nil
		}
		return w.streams[w.effective]
	}
	return w.cur
}

// --- logging, time, ticks, status ---

func proxyLog(_ context.Context, w *worker, s []uint64) Status {
	level := LogLevel(u32(s[0]))
	if level > LogCritical {
		return StatusBadArgument
	}
	msg, ok := w.readString(s[1], s[2])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if level < w.h.logLevel {
		return StatusOK
	}
	w.tail.add(level.String() + ": " + msg)
	w.out.add(level.String() + ": " + msg)
	w.h.logs.add(LogEntry{Time: time.Now(), Worker: w.idx, Level: level, Source: "proxy_log", Message: msg})
	return StatusOK
}

func proxyGetStatus(_ context.Context, w *worker, s []uint64) Status {
	if !w.mem.WriteUint32Le(u32(s[0]), 0) || !w.mem.WriteUint32Le(u32(s[1]), 0) || !w.mem.WriteUint32Le(u32(s[2]), 0) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func proxySetTickPeriod(_ context.Context, w *worker, s []uint64) Status {
	w.tickPeriod.Store(int64(time.Duration(u32(s[0])) * time.Millisecond))
	select {
	case w.tickReset <- struct{}{}:
	default:
	}
	return StatusOK
}

func proxyGetCurrentTime(_ context.Context, w *worker, s []uint64) Status {
	return w.out64(s[0], uint64(w.h.cfg.Now().UnixNano()))
}

func proxyDone(_ context.Context, w *worker, _ []uint64) Status {
	if w.doneCh != nil {
		close(w.doneCh)
		w.doneCh = nil
		return StatusOK
	}
	return StatusNotFound
}

func proxySetEffectiveContext(_ context.Context, w *worker, s []uint64) Status {
	id := u32(s[0])
	if id != w.rootID {
		if _, ok := w.streams[id]; !ok {
			return StatusBadArgument
		}
	}
	w.effective = id
	return StatusOK
}

func proxyCallForeignFunction(_ context.Context, w *worker, s []uint64) Status {
	if _, ok := w.read(s[0], s[1]); !ok {
		return StatusInvalidMemoryAccess
	}
	// Envoy answers NotFound for a foreign function it does not register;
	// this host registers none.
	return StatusNotFound
}

// --- properties ---

func proxyGetProperty(ctx context.Context, w *worker, s []uint64) Status {
	path, ok := w.read(s[0], s[1])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	key := propertyKey(path)
	var v []byte
	found := false
	if st := w.target(); st != nil {
		v, found = st.property(key)
	}
	if !found {
		v, found = w.hostProperty(key)
	}
	if !found {
		return StatusNotFound
	}
	return w.copyOut(ctx, v, s[2], s[3])
}

func proxySetProperty(_ context.Context, w *worker, s []uint64) Status {
	path, ok1 := w.read(s[0], s[1])
	v, ok2 := w.read(s[2], s[3])
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	key := propertyKey(path)
	val := append([]byte(nil), v...)
	if st := w.target(); st != nil {
		st.setProp(key, val)
	} else {
		w.rootProps[key] = val
	}
	return StatusOK
}

// --- local response, stream control ---

func proxySendLocalResponse(_ context.Context, w *worker, s []uint64) Status {
	st := w.target()
	if st == nil {
		return StatusBadArgument
	}
	details, ok1 := w.readString(s[1], s[2])
	body, ok2 := w.read(s[3], s[4])
	hdrs, ok3 := w.read(s[5], s[6])
	if !ok1 || !ok2 || !ok3 {
		return StatusInvalidMemoryAccess
	}
	pairs, err := DecodePairs(hdrs)
	if err != nil {
		return StatusBadArgument
	}
	if st.local != nil || st.reset {
		return StatusBadArgument // Envoy: a second local reply is refused
	}
	st.local = &LocalResponse{Status: u32(s[0]), Details: details, Body: append([]byte(nil), body...),
		Headers: pairs, GRPCStatus: int32(u32(s[7]))}
	if st.respHeadersSent {
		// source/common/http/filter_manager.cc sendLocalReply: once the
		// response headers went downstream, "all we can do at this point
		// is reset the stream".
		st.reset = true
		if w.cur != st {
			st.notify(Event{Kind: EventClose, Stream: StreamResponse})
		}
		return StatusOK
	}
	if w.cur != st {
		st.notify(Event{Kind: EventLocalResponse, LocalResponse: st.local})
	}
	return StatusOK
}

// proxyContinueStream follows Envoy's Context::continueStream
// (source/extensions/common/wasm/context.cc): continueDecoding or
// continueEncoding, deferred until the VM call returns; then the request
// maps are dropped (request_headers_, request_body_buffer_,
// request_trailers_ = nullptr, whichever direction was continued).
func proxyContinueStream(_ context.Context, w *worker, s []uint64) Status {
	st := w.target()
	if st == nil {
		return StatusBadArgument
	}
	typ := StreamType(u32(s[0]))
	switch typ {
	case StreamDownstream:
		return StatusOK // network filters only: nothing to continue on an HTTP stream
	case StreamUpstream:
		return StatusUnimplemented
	case StreamRequest, StreamResponse:
	default:
		return StatusBadArgument
	}
	st.reqMapsGone, st.reqBodyGone = true, true
	if typ == StreamRequest {
		st.reqBuffering = false
	} else {
		st.respBuffering = false
	}
	if w.cur == st && st.inCallback == int(typ) {
		st.continuedInCallback = true
		return StatusOK
	}
	if !st.paused[typ] {
		w.continueMisuse(typ, "on a direction the filter had not stopped")
	}
	st.paused[typ] = false
	if d := st.dirs[typ]; d != nil && d.stopAll {
		d.stopAll = false
		d.resumed = d.heldSeen || d.heldTrailers != nil
	}
	if typ == StreamResponse && st.respHeaders != nil {
		st.respHeadersSent = true
	}
	if w.cur != st {
		st.notify(Event{Kind: EventContinue, Stream: typ})
	}
	return StatusOK
}

// continueMisuse records a proxy_continue_stream Envoy asserts against.
func (w *worker) continueMisuse(typ StreamType, how string) {
	w.h.continueMisuses.Add(1)
	w.guestLine(LogWarn, "host", "proxy_continue_stream("+typ.String()+") "+how+
		" (Envoy asserts against it: filter_manager.cc commonContinue)")
}

func proxyCloseStream(_ context.Context, w *worker, s []uint64) Status {
	st := w.target()
	if st == nil {
		return StatusBadArgument
	}
	typ := StreamType(u32(s[0]))
	if typ > StreamUpstream {
		return StatusBadArgument
	}
	st.notify(Event{Kind: EventClose, Stream: typ})
	return StatusOK
}

// --- shared data and queues ---

func proxyGetSharedData(ctx context.Context, w *worker, s []uint64) Status {
	key, ok := w.readString(s[0], s[1])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	v, cas, st := w.h.shared.Get(key)
	if st != StatusOK {
		return st
	}
	if st := w.copyOut(ctx, v, s[2], s[3]); st != StatusOK {
		return st
	}
	return w.out32(s[4], cas)
}

func proxySetSharedData(_ context.Context, w *worker, s []uint64) Status {
	key, ok1 := w.readString(s[0], s[1])
	v, ok2 := w.read(s[2], s[3])
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	return w.h.shared.Set(key, v, u32(s[4]))
}

func proxyRegisterSharedQueue(_ context.Context, w *worker, s []uint64) Status {
	name, ok := w.readString(s[0], s[1])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	id := w.h.proc.registerQueue(w.h.cfg.VMID, name, w.queueReady)
	return w.out32(s[2], id)
}

// queueReady schedules proxy_on_queue_ready on this worker's root context.
func (w *worker) queueReady(id uint32) {
	w.async(func() {
		w.cur, w.effective = nil, 0
		_, _ = w.call("proxy_on_queue_ready", w.fns.queueReady, uint64(w.rootID), uint64(id))
	})
}

func proxyResolveSharedQueue(_ context.Context, w *worker, s []uint64) Status {
	vmID, ok1 := w.readString(s[0], s[1])
	name, ok2 := w.readString(s[2], s[3])
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	id, found := w.h.proc.resolveQueue(vmID, name)
	if !found {
		return StatusNotFound
	}
	return w.out32(s[4], id)
}

func proxyDequeueSharedQueue(ctx context.Context, w *worker, s []uint64) Status {
	v, st := w.h.proc.dequeue(u32(s[0]))
	if st != StatusOK {
		return st
	}
	return w.copyOut(ctx, v, s[1], s[2])
}

func proxyEnqueueSharedQueue(_ context.Context, w *worker, s []uint64) Status {
	v, ok := w.read(s[1], s[2])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	return w.h.proc.enqueue(u32(s[0]), v)
}

// --- header maps ---

// headerMapFor returns the map of type t for the current context; writable
// is false in the access-log phase and for callout responses.
func (w *worker) headerMapFor(t MapType) (m *headerMap, writable, ok bool) {
	switch t {
	case MapHTTPCallResponseHeaders, MapHTTPCallResponseTrailer:
		if w.callout == nil {
			return nil, false, false
		}
		if t == MapHTTPCallResponseHeaders {
			return w.callout.headers, false, w.callout.headers != nil
		}
		return w.callout.trailers, false, w.callout.trailers != nil
	}
	st := w.target()
	if st == nil {
		return nil, false, false
	}
	switch t {
	case MapRequestHeaders:
		m = st.reqHeaders
		if st.reqMapsGone && !st.logPhase {
			m = nil // dropped by proxy_continue_stream
		}
	case MapRequestTrailers:
		m = st.reqTrailers
		if st.reqMapsGone && !st.logPhase {
			m = nil
		}
	case MapResponseHeaders:
		m = st.respHeaders
	case MapResponseTrailers:
		m = st.respTrailers
	default:
		return nil, false, false
	}
	return m, !st.logPhase, m != nil
}

// unavailable is Envoy's answer for a map that does not exist (yet).
func (w *worker) unavailable() Status {
	if st := w.target(); st != nil && st.logPhase {
		return StatusNotFound
	}
	return StatusBadArgument
}

func proxyGetHeaderMapValue(ctx context.Context, w *worker, s []uint64) Status {
	key, ok := w.read(s[1], s[2])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	m, _, ok := w.headerMapFor(MapType(u32(s[0])))
	if !ok {
		if w.callout != nil && MapType(u32(s[0])) >= MapHTTPCallResponseHeaders {
			return StatusNotFound
		}
		return w.unavailable()
	}
	v, found := m.getBytes(key)
	if !found {
		return StatusNotFound
	}
	return w.copyOutString(ctx, v, s[3], s[4])
}

func mutateHeaderMap(w *worker, s []uint64, withValue bool, op func(m *headerMap, k, v string)) Status {
	raw, ok := w.read(s[1], s[2])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	key := w.headerKey(raw)
	var rawVal []byte
	if withValue {
		if rawVal, ok = w.read(s[3], s[4]); !ok {
			return StatusInvalidMemoryAccess
		}
	}
	m, writable, ok := w.headerMapFor(MapType(u32(s[0])))
	if !ok || !writable {
		return StatusBadArgument
	}
	// A writable map is a stream's (w.target()): the value is copied into
	// that stream's arena.
	op(m, key, w.target().values.string(rawVal))
	return StatusOK
}

// maxHeaderNames bounds the names a worker interns (a guest naming a new
// header on every request gets a fresh string each time, as before).
const maxHeaderNames = 64

// headerName is an interned header name: as the guest gave it, and its
// lower-case form (Envoy's LowerCaseString), the header map's key.
type headerName struct{ raw, key string }

// headerKey returns the map key (lower-cased) of raw, a header name in
// guest memory: for a name seen before, the same string, without an
// allocation per call. Names up to 64 bytes are interned, at most
// maxHeaderNames of them; a worker's guest mutates a few names on every
// request, so a linear scan beats hashing.
func (w *worker) headerKey(raw []byte) string {
	for i := range w.headerNames {
		if n := &w.headerNames[i]; n.raw == string(raw) { // no allocation for the comparison
			return n.key
		}
	}
	name := string(raw)
	key := strings.ToLower(name)
	if len(raw) <= 64 && len(w.headerNames) < maxHeaderNames {
		w.headerNames = append(w.headerNames, headerName{raw: name, key: key})
	}
	return key
}

func proxyAddHeaderMapValue(_ context.Context, w *worker, s []uint64) Status {
	return mutateHeaderMap(w, s, true, (*headerMap).addKey)
}

func proxyReplaceHeaderMapValue(_ context.Context, w *worker, s []uint64) Status {
	return mutateHeaderMap(w, s, true, (*headerMap).replaceKey)
}

func proxyRemoveHeaderMapValue(_ context.Context, w *worker, s []uint64) Status {
	return mutateHeaderMap(w, s, false, func(m *headerMap, k, _ string) { m.removeKey(k) })
}

func proxyGetHeaderMapPairs(ctx context.Context, w *worker, s []uint64) Status {
	m, _, ok := w.headerMapFor(MapType(u32(s[0])))
	if !ok {
		if w.callout != nil && MapType(u32(s[0])) >= MapHTTPCallResponseHeaders {
			return w.copyOut(ctx, nil, s[1], s[2]) // a reset callout: no headers
		}
		return w.unavailable()
	}
	return w.copyOutPairs(ctx, m, s[1], s[2])
}

func proxySetHeaderMapPairs(_ context.Context, w *worker, s []uint64) Status {
	raw, ok := w.read(s[1], s[2])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	pairs, err := DecodePairs(raw)
	if err != nil {
		return StatusBadArgument
	}
	m, writable, ok := w.headerMapFor(MapType(u32(s[0])))
	if !ok || !writable {
		return StatusBadArgument
	}
	m.set(pairs)
	return StatusOK
}

func proxyGetHeaderMapSize(_ context.Context, w *worker, s []uint64) Status {
	m, _, ok := w.headerMapFor(MapType(u32(s[0])))
	if !ok {
		return w.unavailable()
	}
	return w.out32(s[1], uint32(m.encodedSize()))
}

// --- buffers ---

// buffer returns a pointer to the buffer of type t for the current context.
func (w *worker) buffer(t BufferType) (*[]byte, bool) {
	switch t {
	case BufferVMConfiguration:
		c := w.h.cfg.VMConfig
		return &c, true
	case BufferPluginConfiguration:
		c := w.h.cfg.PluginConfig
		return &c, true
	case BufferHTTPCallResponse:
		if w.callout == nil {
			return nil, false
		}
		return &w.callout.body, true
	}
	st := w.target()
	if st == nil {
		return nil, false
	}
	switch t {
	case BufferRequestBody:
		if st.reqBodyGone {
			return nil, false // dropped by proxy_continue_stream
		}
		return &st.reqBody, true
	case BufferResponseBody:
		return &st.respBody, true
	}
	return nil, false
}

func proxyGetBufferStatus(_ context.Context, w *worker, s []uint64) Status {
	b, ok := w.buffer(BufferType(u32(s[0])))
	if !ok {
		return StatusNotFound
	}
	if !w.mem.WriteUint32Le(u32(s[1]), uint32(len(*b))) || !w.mem.WriteUint32Le(u32(s[2]), 0) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func proxyGetBufferBytes(ctx context.Context, w *worker, s []uint64) Status {
	typ := BufferType(u32(s[0]))
	if typ > BufferCallData {
		return StatusBadArgument
	}
	b, ok := w.buffer(typ)
	if !ok {
		return StatusNotFound
	}
	start, length := uint64(u32(s[1])), uint64(u32(s[2]))
	size := uint64(len(*b))
	if start > size {
		return StatusBadArgument
	}
	if start+length > size {
		length = size - start
	}
	return w.copyOut(ctx, (*b)[start:start+length], s[3], s[4])
}

// proxySetBufferBytes follows Envoy: start 0 drains size bytes then prepends
// the data (start 0, size >= len replaces it); start >= len appends; any
// other start is BadArgument.
func proxySetBufferBytes(_ context.Context, w *worker, s []uint64) Status {
	typ := BufferType(u32(s[0]))
	if typ != BufferRequestBody && typ != BufferResponseBody && typ != BufferHTTPCallResponse {
		return StatusBadArgument
	}
	data, ok := w.read(s[3], s[4])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	b, ok := w.buffer(typ)
	if !ok {
		return StatusNotFound
	}
	if st := w.target(); st != nil && st.logPhase {
		return StatusBadArgument
	}
	start, drain := uint64(u32(s[1])), uint64(u32(s[2]))
	cur := *b
	switch {
	case start == 0:
		if drain > uint64(len(cur)) {
			drain = uint64(len(cur))
		}
		out := make([]byte, 0, len(data)+len(cur)-int(drain))
		out = append(out, data...)
		*b = append(out, cur[drain:]...)
	case start >= uint64(len(cur)):
		*b = append(cur, data...)
	default:
		return StatusBadArgument
	}
	return StatusOK
}

// --- http_call ---

func proxyHTTPCall(_ context.Context, w *worker, s []uint64) Status {
	name, ok1 := w.readString(s[0], s[1])
	rawHdrs, ok2 := w.read(s[2], s[3])
	body, ok3 := w.read(s[4], s[5])
	rawTrl, ok4 := w.read(s[6], s[7])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return StatusInvalidMemoryAccess
	}
	hdrs, err := DecodePairs(rawHdrs)
	if err != nil {
		return StatusBadArgument
	}
	trls, err := DecodePairs(rawTrl)
	if err != nil {
		return StatusBadArgument
	}
	cl, st := w.h.validateCallout(name, hdrs)
	if st != StatusOK {
		return st
	}
	w.nextCallout++
	id := w.nextCallout
	if !w.mem.WriteUint32Le(u32(s[9]), id) {
		return StatusInvalidMemoryAccess
	}
	w.dispatch(id, calloutRequest{cluster: cl, headers: hdrs, body: append([]byte(nil), body...),
		trailers: trls, timeout: time.Duration(u32(s[8])) * time.Millisecond})
	return StatusOK
}

// --- metrics ---

func proxyDefineMetric(_ context.Context, w *worker, s []uint64) Status {
	name, ok := w.readString(s[1], s[2])
	if !ok {
		return StatusInvalidMemoryAccess
	}
	id, st := w.h.metrics.define(MetricType(u32(s[0])), name)
	if st != StatusOK {
		return st
	}
	return w.out32(s[3], id)
}

func proxyIncrementMetric(_ context.Context, w *worker, s []uint64) Status {
	return w.h.metrics.increment(u32(s[0]), int64(s[1]))
}

func proxyRecordMetric(_ context.Context, w *worker, s []uint64) Status {
	return w.h.metrics.record(u32(s[0]), s[1])
}

func proxyGetMetric(_ context.Context, w *worker, s []uint64) Status {
	v, st := w.h.metrics.get(u32(s[0]))
	if st != StatusOK {
		return st
	}
	return w.out64(s[1], uint64(v))
}
