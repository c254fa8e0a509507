//go:build wasip1 && !tinygo

// Guest callbacks of the proxy-wasm ABI 0.2.1 for the standard Go toolchain:
// //go:wasmexport wrappers around the SDK's own (lowercase) callbacks, which
// it marks with TinyGo's //export, and proxy_on_memory_allocate.

package internal

import (
	"runtime"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// pendingAllocations keeps every buffer handed to the host referenced until
// the host call that asked for it has returned and takeBuffer has given it to
// the SDK: the host holds only an integer address, which the GC cannot see.
type pendingAllocations struct {
	bufs [][]byte
}

func (p *pendingAllocations) add(b []byte) {
	p.bufs = append(p.bufs, b)
}

func (p *pendingAllocations) take(addr uint32) []byte {
	if addr == 0 {
		return nil
	}
	for _, b := range p.bufs {
		if addressOf(b) == addr {
			return b
		}
	}
	return nil
}

func (p *pendingAllocations) reset() {
	for i := range p.bufs {
		p.bufs[i] = nil
	}
	p.bufs = p.bufs[:0]
}

// allocations is package state of the SDK's internal package, like the SDK's
// own currentState: a Wasm module instance is single-threaded.
var allocations pendingAllocations

// scratch is one buffer reused by the host calls that read into it
// (GetHeaderMapPairsView): while armed, the next proxy_on_memory_allocate
// hands out scratch instead of a new heap buffer, so that reading the
// request headers allocates nothing in the steady state, whatever their
// size. It stays referenced here (GC-safe); its length is always its
// capacity.
//
// It grows to the largest header map read (up to maxScratch) and shrinks
// back to keepScratch after shrinkAfter reads that all fitted in
// keepScratch. Before, a map larger than 64 KiB got a fresh heap buffer on
// every request: with ~1 MiB of headers per request the GC ran on almost
// every request, its CPU share reached the GC CPU limiter's 50 %, the
// limiter switched mark assists off (runtime.gcAssistAlloc: "if
// gcCPULimiter.limiting() ... don't assist") and, in a Wasm module whose
// only goroutine never blocks, nothing else finishes a mark phase (the
// background mark workers are goroutines that never get scheduled): the
// cycle in progress never ended and the heap grew to the 1 GiB limit.
var scratch struct {
	armed bool
	buf   []byte
	small int // consecutive reads that fitted in keepScratch
}

const (
	// keepScratch is the size kept for good.
	keepScratch = 64 << 10
	// maxScratch bounds a header map read at all: a larger one is refused
	// (allocation answered with address 0: proxy-wasm-cpp-host's
	// WasmBase::allocMemory then yields nullptr and the host call fails,
	// include/proxy-wasm/wasm.h copyToPointerSize, src/exports.cc
	// get_header_map_pairs; the filter refuses the request). Envoy bounds request headers to 8 MiB
	// (max_request_headers_kb <= 8192) and their count to
	// max_headers_count; the serialisation adds 10 bytes per header.
	maxScratch = 16 << 20
	// shrinkAfter small reads drop a grown buffer.
	shrinkAfter = 4096
)

// yieldAfter is how many bytes of heap buffers handed to the host (outside
// scratch) make the next callback end with runtime.Gosched: it lets the
// runtime's background goroutines (GC mark workers, sweeper) run, which a
// Wasm module whose only goroutine never blocks otherwise never does.
const yieldAfter = 1 << 20

// handedOut counts the bytes proxy_on_memory_allocate handed out on the heap
// since the last yield.
var handedOut int

//go:wasmexport proxy_on_memory_allocate
func exportOnMemoryAllocate(size uint32) uint32 {
	n := int(size)
	if n == 0 {
		n = 1 // a valid, distinct address even for an empty value
	}
	if scratch.armed {
		scratch.armed = false // one allocation per armed call
		if n > maxScratch {
			return 0 // the host call fails (InvalidMemoryAccess)
		}
		if n <= keepScratch {
			scratch.small++
			if scratch.small >= shrinkAfter && len(scratch.buf) > keepScratch {
				scratch.buf = nil
			}
		} else {
			scratch.small = 0
		}
		if len(scratch.buf) < n {
			c := 1024
			for c < n {
				c *= 2
			}
			if n <= keepScratch {
				c = keepScratch
			}
			scratch.buf = nil // the old buffer can go before the new one is made
			scratch.buf = make([]byte, c)
			handedOut += c
		}
		return addressOf(scratch.buf)
	}
	buf := make([]byte, n)
	handedOut += n
	allocations.add(buf)
	return addressOf(buf)
}

// yielded is yield(false) for a callback that returns a, without a defer
// (the request path runs it twice per request). It inlines into the
// exports; yieldNow, the rare part, is kept out of line so that it can.
func yielded(a uint32) uint32 {
	if handedOut >= yieldAfter {
		yieldNow()
	}
	return a
}

//go:noinline
func yieldNow() { yield(true) }

// yield ends a callback: after yieldAfter bytes handed to the host, and on
// every tick, it lets the runtime's background goroutines run.
func yield(force bool) {
	if force || handedOut >= yieldAfter {
		handedOut = 0
		runtime.Gosched()
	}
}

// GetHeaderMapPairsView is ProxyGetHeaderMapPairs without allocation: the
// serialised map is read into the scratch buffer and the returned slice
// (nil for an empty map) is valid only until the next call. A map larger
// than maxScratch is an error (StatusInvalidMemoryAccess).
func GetHeaderMapPairsView(mapType MapType) ([]byte, Status) {
	scratch.armed = true
	st := Status(hostGetHeaderMapPairs(uint32(mapType), &ret.addr, &ret.size))
	scratch.armed = false
	addr, size := ret.addr, int(ret.size)
	if st != StatusOK || addr == 0 || size == 0 {
		allocations.reset()
		return nil, st
	}
	if len(scratch.buf) > 0 && addr == addressOf(scratch.buf) && size <= len(scratch.buf) {
		allocations.reset()
		return scratch.buf[:size], st
	}
	buf := allocations.take(addr) // not ours: a host that allocated twice
	allocations.reset()
	if buf == nil || size > len(buf) {
		return nil, StatusInternalFailure
	}
	return buf[:size], st
}

//go:wasmexport proxy_abi_version_0_2_0
func exportABIVersion() {
	proxyABIVersion()
}

func boolFlag(v uint32) bool { return v != 0 }

func boolResult(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_vm_start
func exportOnVMStart(rootContextID uint32, vmConfigurationSize uint32) uint32 {
	return boolResult(bool(proxyOnVMStart(rootContextID, int(vmConfigurationSize))))
}

//go:wasmexport proxy_on_configure
func exportOnConfigure(rootContextID uint32, pluginConfigurationSize uint32) uint32 {
	return boolResult(bool(proxyOnConfigure(rootContextID, int(pluginConfigurationSize))))
}

//go:wasmexport proxy_on_context_create
func exportOnContextCreate(contextID uint32, parentContextID uint32) {
	createContext(contextID, parentContextID)
}

//go:wasmexport proxy_on_request_headers
func exportOnRequestHeaders(contextID uint32, numHeaders uint32, endOfStream uint32) uint32 {
	if ctx := activeHTTP(contextID); ctx != nil {
		return yielded(uint32(ctx.OnHttpRequestHeaders(int(numHeaders), boolFlag(endOfStream))))
	}
	return yielded(uint32(proxyOnRequestHeaders(contextID, int(numHeaders), boolFlag(endOfStream))))
}

//go:wasmexport proxy_on_request_body
func exportOnRequestBody(contextID uint32, bodySize uint32, endOfStream uint32) uint32 {
	if ctx := activeHTTP(contextID); ctx != nil {
		return yielded(uint32(ctx.OnHttpRequestBody(int(bodySize), boolFlag(endOfStream))))
	}
	return yielded(uint32(proxyOnRequestBody(contextID, int(bodySize), boolFlag(endOfStream))))
}

//go:wasmexport proxy_on_request_trailers
func exportOnRequestTrailers(contextID uint32, numTrailers uint32) uint32 {
	if ctx := activeHTTP(contextID); ctx != nil {
		return uint32(ctx.OnHttpRequestTrailers(int(numTrailers)))
	}
	return uint32(proxyOnRequestTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_response_headers
func exportOnResponseHeaders(contextID uint32, numHeaders uint32, endOfStream uint32) uint32 {
	if ctx := activeHTTP(contextID); ctx != nil {
		return yielded(uint32(ctx.OnHttpResponseHeaders(int(numHeaders), boolFlag(endOfStream))))
	}
	return yielded(uint32(proxyOnResponseHeaders(contextID, int(numHeaders), boolFlag(endOfStream))))
}

//go:wasmexport proxy_on_response_body
func exportOnResponseBody(contextID uint32, bodySize uint32, endOfStream uint32) uint32 {
	if ctx := activeHTTP(contextID); ctx != nil {
		return yielded(uint32(ctx.OnHttpResponseBody(int(bodySize), boolFlag(endOfStream))))
	}
	return yielded(uint32(proxyOnResponseBody(contextID, int(bodySize), boolFlag(endOfStream))))
}

//go:wasmexport proxy_on_response_trailers
func exportOnResponseTrailers(contextID uint32, numTrailers uint32) uint32 {
	if ctx := activeHTTP(contextID); ctx != nil {
		return uint32(ctx.OnHttpResponseTrailers(int(numTrailers)))
	}
	return uint32(proxyOnResponseTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_http_call_response
func exportOnHttpCallResponse(rootContextID, calloutID, numHeaders, bodySize, numTrailers uint32) {
	defer yield(false)
	proxyOnHttpCallResponse(rootContextID, calloutID, int(numHeaders), int(bodySize), int(numTrailers))
}

//go:wasmexport proxy_on_tick
func exportOnTick(rootContextID uint32) {
	proxyOnTick(rootContextID)
	yield(true)
}

//go:wasmexport proxy_on_queue_ready
func exportOnQueueReady(rootContextID, queueID uint32) {
	proxyOnQueueReady(rootContextID, queueID)
}

//go:wasmexport proxy_on_done
func exportOnDone(contextID uint32) uint32 {
	if tableHTTP(contextID) != nil {
		return 1 // the SDK's answer for a context that is not a root
	}
	return boolResult(proxyOnDone(contextID))
}

//go:wasmexport proxy_on_log
func exportOnLog(contextID uint32) {
	if ctx := activeHTTP(contextID); ctx != nil {
		ctx.OnHttpStreamDone()
		return
	}
	proxyOnLog(contextID)
}

//go:wasmexport proxy_on_delete
func exportOnDelete(contextID uint32) {
	deleteContext(contextID)
}

//go:wasmexport proxy_on_new_connection
func exportOnNewConnection(contextID uint32) uint32 {
	return uint32(proxyOnNewConnection(contextID))
}

//go:wasmexport proxy_on_downstream_data
func exportOnDownstreamData(contextID uint32, dataSize uint32, endOfStream uint32) uint32 {
	return uint32(proxyOnDownstreamData(contextID, int(dataSize), boolFlag(endOfStream)))
}

//go:wasmexport proxy_on_downstream_connection_close
func exportOnDownstreamConnectionClose(contextID uint32, peerType uint32) {
	proxyOnDownstreamConnectionClose(contextID, types.PeerType(peerType))
}

//go:wasmexport proxy_on_upstream_data
func exportOnUpstreamData(contextID uint32, dataSize uint32, endOfStream uint32) uint32 {
	return uint32(proxyOnUpstreamData(contextID, int(dataSize), boolFlag(endOfStream)))
}

//go:wasmexport proxy_on_upstream_connection_close
func exportOnUpstreamConnectionClose(contextID uint32, peerType uint32) {
	proxyOnUpstreamConnectionClose(contextID, types.PeerType(peerType))
}
