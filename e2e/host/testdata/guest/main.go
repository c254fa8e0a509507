//go:build wasip1

// Command guest is a minimal proxy-wasm module used by the host's own tests.
// It talks to the ABI directly (no SDK) so every host behaviour can be
// observed. The request header x-cmd selects what it does; results are
// written back as request headers (x-status, x-value, ...) or shared data.
package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

func main() {}

//go:wasmimport env proxy_log
func hLog(level uint32, ptr unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_shared_data
func hGetShared(kp unsafe.Pointer, ks uint32, vp *uint32, vs *uint32, cas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func hSetShared(kp unsafe.Pointer, ks uint32, vp unsafe.Pointer, vs uint32, cas uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func hGetHeader(mt uint32, kp unsafe.Pointer, ks uint32, vp *uint32, vs *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func hAddHeader(mt uint32, kp unsafe.Pointer, ks uint32, vp unsafe.Pointer, vs uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func hGetPairs(mt uint32, vp *uint32, vs *uint32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func hSetPairs(mt uint32, p unsafe.Pointer, n uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func hReplaceHeader(mt uint32, kp unsafe.Pointer, ks uint32, vp unsafe.Pointer, vs uint32) uint32

//go:wasmimport env proxy_get_header_map_size
func hGetMapSize(mt uint32, size *uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func hGetBuffer(bt, start, max uint32, vp *uint32, vs *uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func hSetBuffer(bt, start, size uint32, dp unsafe.Pointer, ds uint32) uint32

//go:wasmimport env proxy_http_call
func hHTTPCall(up unsafe.Pointer, us uint32, hp unsafe.Pointer, hs uint32, bp unsafe.Pointer, bs uint32, tp unsafe.Pointer, ts uint32, timeout uint32, id *uint32) uint32

//go:wasmimport env proxy_send_local_response
func hLocal(status uint32, dp unsafe.Pointer, ds uint32, bp unsafe.Pointer, bs uint32, hp unsafe.Pointer, hs uint32, grpc int32) uint32

//go:wasmimport env proxy_continue_stream
func hContinue(typ uint32) uint32

//go:wasmimport env proxy_set_effective_context
func hSetEffective(id uint32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func hSetTick(ms uint32) uint32

//go:wasmimport env proxy_get_property
func hGetProperty(pp unsafe.Pointer, ps uint32, vp *uint32, vs *uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func hRegisterQueue(np unsafe.Pointer, ns uint32, id *uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func hResolveQueue(vp unsafe.Pointer, vs uint32, np unsafe.Pointer, ns uint32, id *uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func hEnqueue(id uint32, vp unsafe.Pointer, vs uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func hDequeue(id uint32, vp *uint32, vs *uint32) uint32

//go:wasmimport env proxy_define_metric
func hDefineMetric(typ uint32, np unsafe.Pointer, ns uint32, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func hIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_record_metric
func hRecordMetric(id uint32, v uint64) uint32

//go:wasmimport env proxy_get_metric
func hGetMetric(id uint32, v *uint64) uint32

//go:wasmimport env proxy_call_foreign_function
func hForeign(np unsafe.Pointer, ns uint32, ap unsafe.Pointer, as uint32, rp *uint32, rs *uint32) uint32

// --- memory handed to the host ---

var pending [][]byte

//go:wasmexport proxy_on_memory_allocate
func onAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	pending = append(pending, b)
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// take copies the host's answer and releases the pending buffers.
func take(p, n uint32) []byte {
	var out []byte
	if p != 0 {
		out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)...)
	}
	for i := range pending {
		pending[i] = nil
	}
	pending = pending[:0]
	return out
}

func ptr(s string) (unsafe.Pointer, uint32) {
	if s == "" {
		return nil, 0
	}
	b := []byte(s)
	return unsafe.Pointer(&b[0]), uint32(len(b))
}

func logf(level uint32, format string, args ...any) {
	p, n := ptr(fmt.Sprintf(format, args...))
	hLog(level, p, n)
}

func getShared(key string) ([]byte, uint32, uint32) {
	kp, ks := ptr(key)
	var vp, vs, cas uint32
	st := hGetShared(kp, ks, &vp, &vs, &cas)
	return take(vp, vs), cas, st
}

func setShared(key, value string, cas uint32) uint32 {
	kp, ks := ptr(key)
	vp, vs := ptr(value)
	return hSetShared(kp, ks, vp, vs, cas)
}

func getHeader(mt uint32, key string) (string, uint32) {
	kp, ks := ptr(key)
	var vp, vs uint32
	st := hGetHeader(mt, kp, ks, &vp, &vs)
	return string(take(vp, vs)), st
}

func addHeader(key, value string) {
	kp, ks := ptr(key)
	vp, vs := ptr(value)
	hAddHeader(0, kp, ks, vp, vs)
}

func encodePairs(pairs [][2]string) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p[0])))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p[1])))
	}
	for _, p := range pairs {
		out = append(append(out, p[0]...), 0)
		out = append(append(out, p[1]...), 0)
	}
	return out
}

// --- contexts ---

var (
	rootID     uint32
	instance   string
	ticks      int
	live       = map[uint32]bool{}
	calloutCtx = map[uint32]uint32{}
	// calloutResp: the callout was made from the response headers; its
	// answer resumes the response.
	calloutResp = map[uint32]bool{}
	queueID     uint32
	logged      int
)

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {
	if parent == 0 {
		rootID = id
		return
	}
	if parent != rootID {
		panic("proxy_on_context_create: unknown parent context " + strconv.Itoa(int(parent)))
	}
	live[id] = true
	setShared("live:"+instance, strconv.Itoa(len(live)), 0)
}

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) uint32 {
	var vp, vs uint32
	hGetBuffer(6, 0, size, &vp, &vs)
	cfg := string(take(vp, vs))
	instance = strconv.FormatUint(rand.Uint64(), 36)
	logf(2, "guest vm start, vm config %q", cfg)
	return 1
}

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) uint32 {
	var vp, vs uint32
	hGetBuffer(7, 0, size, &vp, &vs)
	cfg := string(take(vp, vs))
	if strings.HasPrefix(cfg, "bad") {
		logf(5, "guest: field %q is wrong", cfg)
		return 0
	}
	if strings.HasPrefix(cfg, "stderr") {
		fmt.Fprintln(os.Stderr, "guest wrote to stderr")
	}
	if strings.HasPrefix(cfg, "tick:") {
		ms, _ := strconv.Atoi(strings.TrimPrefix(cfg, "tick:"))
		hSetTick(uint32(ms))
	}
	np, ns := ptr("q")
	hRegisterQueue(np, ns, &queueID)
	return 1
}

//go:wasmexport proxy_on_tick
func onTick(root uint32) {
	if root != rootID {
		panic("tick on unknown root")
	}
	ticks++
	setShared("ticks:"+instance, strconv.Itoa(ticks), 0)
}

//go:wasmexport proxy_on_queue_ready
func onQueueReady(root, id uint32) {
	var vp, vs uint32
	st := hDequeue(id, &vp, &vs)
	v := take(vp, vs)
	setShared("queue:last", fmt.Sprintf("%d:%s", st, v), 0)
}

func status(st uint32) { addHeader("x-status", strconv.Itoa(int(st))) }

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	if !live[id] {
		panic("proxy_on_request_headers: unknown context " + strconv.Itoa(int(id)))
	}
	cmd, _ := getHeader(0, "x-cmd")
	op, arg, _ := strings.Cut(cmd, ":")
	switch op {
	case "get":
		v, cas, st := getShared(arg)
		status(st)
		addHeader("x-value", string(v))
		addHeader("x-cas", strconv.Itoa(int(cas)))
	case "set": // set:key:value:cas
		parts := strings.SplitN(arg, ":", 3)
		cas, _ := strconv.Atoi(parts[2])
		status(setShared(parts[0], parts[1], uint32(cas)))
	case "rewrite":
		p := encodePairs([][2]string{{":path", "/rewritten"}, {"X-New", "1"}, {"x-new", "dup"}})
		st1 := hSetPairs(0, unsafe.Pointer(&p[0]), uint32(len(p)))
		kp, ks := ptr("x-new")
		vp, vs := ptr("2")
		st2 := hReplaceHeader(0, kp, ks, vp, vs)
		var size uint32
		st3 := hGetMapSize(0, &size)
		_, st4 := getHeader(2, ":status")
		addHeader("x-rewrite", fmt.Sprintf("%d%d%d%d:%d", st1, st2, st3, st4, size))
	case "loop": // loop:n host calls without allocation
		n, _ := strconv.Atoi(arg)
		kp, ks := ptr("missing")
		var vp, vs, cas uint32
		for i := 0; i < n; i++ {
			hGetShared(kp, ks, &vp, &vs, &cas)
		}
	case "allocloop": // allocloop:n host calls that allocate guest memory
		n, _ := strconv.Atoi(arg)
		for i := 0; i < n; i++ {
			getHeader(0, ":path")
		}
	case "pairs":
		var vp, vs uint32
		st := hGetPairs(0, &vp, &vs)
		status(st)
		addHeader("x-value", strconv.Itoa(int(vs)))
	case "callout": // callout:cluster:path[:noauthority]
		parts := strings.Split(arg, ":")
		hdrs := [][2]string{{":method", "GET"}, {":path", parts[1]}}
		if len(parts) < 3 {
			hdrs = append(hdrs, [2]string{":authority", "upstream"})
		}
		h := encodePairs(hdrs)
		t := encodePairs(nil)
		up, us := ptr(parts[0])
		var cid uint32
		st := hHTTPCall(up, us, unsafe.Pointer(&h[0]), uint32(len(h)), nil, 0, unsafe.Pointer(&t[0]), uint32(len(t)), 500, &cid)
		status(st)
		if st == 0 {
			calloutCtx[cid] = id
			return 1
		}
	case "local":
		code, _ := strconv.Atoi(arg)
		h := encodePairs([][2]string{{"x-why", "test"}})
		bp, bs := ptr("denied")
		dp, ds := ptr("guest_denied")
		st := hLocal(uint32(code), dp, ds, bp, bs, unsafe.Pointer(&h[0]), uint32(len(h)), -1)
		logf(2, "local response status %d", st)
		return 1
	case "pause":
		return 1
	case "continue-now": // continue a request it never stopped (misuse)
		hContinue(0)
	case "trap":
		panic("guest trap requested")
	case "oob":
		status(hLog(2, unsafe.Pointer(uintptr(0xfffffff0)), 64))
	case "prop":
		p := strings.ReplaceAll(arg, ".", "\x00")
		pp, ps := ptr(p)
		var vp, vs uint32
		st := hGetProperty(pp, ps, &vp, &vs)
		status(st)
		addHeader("x-value", fmt.Sprintf("%x", take(vp, vs)))
	case "enqueue":
		vm, vms := ptr("vm")
		np, ns := ptr("q")
		var qid uint32
		if st := hResolveQueue(vm, vms, np, ns, &qid); st != 0 {
			status(st)
			break
		}
		vp, vs := ptr(arg)
		status(hEnqueue(qid, vp, vs))
	case "metric":
		np, ns := ptr("guest_requests")
		var mid uint32
		hDefineMetric(0, np, ns, &mid)
		hIncrementMetric(mid, 2)
		status(hIncrementMetric(mid, -1))
		var v uint64
		hGetMetric(mid, &v)
		addHeader("x-value", strconv.FormatUint(v, 10))
		hp, hs := ptr("guest_latency")
		var hid uint32
		hDefineMetric(2, hp, hs, &hid)
		hRecordMetric(hid, 42)
		gp, gs := ptr("guest_gauge")
		var gid uint32
		hDefineMetric(1, gp, gs, &gid)
		hRecordMetric(gid, 7)
		hIncrementMetric(gid, -2)
	case "foreign":
		np, ns := ptr("nope")
		var rp, rs uint32
		status(hForeign(np, ns, nil, 0, &rp, &rs))
	case "gc":
		n, _ := strconv.Atoi(arg)
		for i := 0; i < n; i++ {
			_ = make([]byte, 1<<16)
			runtime.GC()
		}
		status(0)
	}
	return 0
}

//go:wasmexport proxy_on_request_body
func onRequestBody(id, size, eos uint32) uint32 {
	var vp, vs uint32
	hGetBuffer(0, 0, size, &vp, &vs)
	body := string(take(vp, vs))
	if strings.HasPrefix(body, "buffer") && eos == 0 {
		return 1
	}
	var st uint32
	for _, e := range bodyEdits {
		if strings.HasPrefix(body, e.prefix) {
			p, n := ptr(e.data)
			st = hSetBuffer(0, e.start, e.size, p, n)
			break
		}
	}
	addHeader("x-body-status", strconv.Itoa(int(st)))
	return 0
}

// bodyEdits: a request body starting with prefix makes the guest call
// proxy_set_buffer_bytes(request body, start, size, data).
var bodyEdits = []struct {
	prefix, data string
	start, size  uint32
}{
	{"prepend", ">", 0, 0},
	{"replace", "new", 0, 0x7fffffff},
	{"append", "<", 0x7fffffff, 0},
	{"middle", "!", 1, 0},
}

// Response commands (from the request's x-cmd, which stays readable in the
// response phase until proxy_continue_stream drops the request maps):
//   - resp-hold: pause the response headers, wait for the body (hangs on
//     Envoy's default: no body callback comes);
//   - resp-callout:cluster:path: pause the response headers, resume them
//     from the callout's answer;
//   - resp-deny[:hold]: continue (or pause) the headers, hold the body until
//     its end, then answer 403 locally (Envoy resets the stream if the
//     headers went out);
//   - resp-continue-self: pause the headers after calling
//     proxy_continue_stream(response) in the same callback.
//
// Every response body callback is recorded in shared data
// "rbody:<context id>" as "size/eos/status;..." (status: of reading the
// request's x-cmd: 2 once proxy_continue_stream dropped the request maps).

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n, eos uint32) uint32 {
	v, st := getHeader(2, ":status")
	kp, ks := ptr("x-seen-status")
	vp, vs := ptr(fmt.Sprintf("%d:%s", st, v))
	hAddHeader(2, kp, ks, vp, vs)
	cmd, _ := getHeader(0, "x-cmd")
	op, arg, _ := strings.Cut(cmd, ":")
	switch op {
	case "resp-hold":
		return 1
	case "resp-callout":
		parts := strings.Split(arg, ":")
		h := encodePairs([][2]string{{":method", "GET"}, {":path", parts[1]}, {":authority", "upstream"}})
		t := encodePairs(nil)
		up, us := ptr(parts[0])
		var cid uint32
		if hHTTPCall(up, us, unsafe.Pointer(&h[0]), uint32(len(h)), nil, 0, unsafe.Pointer(&t[0]), uint32(len(t)), 2000, &cid) == 0 {
			calloutCtx[cid] = id
			calloutResp[cid] = true
			return 1
		}
	case "resp-deny":
		if arg == "hold" {
			return 1
		}
	case "resp-continue-self":
		hContinue(1)
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_response_body
func onResponseBody(id, size, eos uint32) uint32 {
	key := "rbody:" + strconv.Itoa(int(id))
	prev, _, _ := getShared(key)
	cmd, st := getHeader(0, "x-cmd")
	setShared(key, fmt.Sprintf("%s%d/%d/%d;", prev, size, eos, st), 0)
	switch strings.TrimSuffix(cmd, ":hold") {
	case "resp-deny":
		if eos == 0 {
			return 1
		}
		h := encodePairs([][2]string{{"content-type", "text/plain"}})
		bp, bs := ptr("denied")
		hLocal(403, nil, 0, bp, bs, unsafe.Pointer(&h[0]), uint32(len(h)), -1)
		return 1
	case "resp-hold":
		if eos == 0 {
			return 1
		}
	}
	return 0
}

//go:wasmexport proxy_on_http_call_response
func onHTTPCallResponse(root, cid, nh, bodySize, nt uint32) {
	ctx, ok := calloutCtx[cid]
	if !ok {
		panic("unknown callout")
	}
	delete(calloutCtx, cid)
	code, st := getHeader(6, ":status")
	var vp, vs uint32
	hGetBuffer(4, 0, bodySize, &vp, &vs)
	body := take(vp, vs)
	setShared(fmt.Sprintf("callout:%d", ctx), fmt.Sprintf("headers=%d status=%s/%d body=%s", nh, code, st, body), 0)
	if hSetEffective(ctx) != 0 {
		return
	}
	if calloutResp[cid] {
		delete(calloutResp, cid)
		hContinue(1)
		return
	}
	if code == "418" {
		h := encodePairs(nil)
		bp, bs := ptr("teapot")
		hLocal(418, nil, 0, bp, bs, unsafe.Pointer(&h[0]), uint32(len(h)), -1)
		return
	}
	hContinue(0)
}

//go:wasmexport proxy_on_log
func onLog(id uint32) { logged++ }

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {
	if id == rootID {
		return
	}
	if !live[id] {
		panic("proxy_on_delete: unknown context")
	}
	delete(live, id)
	setShared("live:"+instance, strconv.Itoa(len(live)), 0)
	setShared("logged:"+instance, strconv.Itoa(logged), 0)
}
