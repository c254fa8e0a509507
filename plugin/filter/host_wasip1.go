//go:build wasip1 && !tinygo

package filter

import (
	"time"
	"unsafe"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// init (run by _initialize: no host call) asks the glue to hand deleted
// HTTP contexts back for reuse.
func init() {
	proxywasm.SetHttpContextDeleteHook(func(c types.HttpContext) {
		if h, ok := c.(*httpContext); ok {
			h.released()
		}
	})
}

// now is the host's wall clock: proxy_get_current_time_nanoseconds, one host
// call where time.Now costs two (WASI's monotonic and wall clocks). The
// result carries no monotonic reading; every time the filter compares comes
// from now.
func now() time.Time {
	ns, ok := proxywasm.GetCurrentTimeNanoseconds()
	if !ok || ns <= 0 {
		return time.Now()
	}
	return time.Unix(0, ns)
}

// requestHeaders reads the request headers into the glue's reused buffer
// (no allocation) and makes h iterate over them: the pairs are valid until
// the next call. It reports false when the host could not hand them over
// (e.g. a map larger than the glue's bound): the filter then cannot see the
// token and must refuse.
func requestHeaders(h *headerPairs) bool {
	raw, ok := proxywasm.GetHttpRequestHeadersView()
	if !ok {
		h.view(nil)
		return false
	}
	h.view(raw)
	return true
}

// sharedCas returns the CAS of a shared-data entry, false when there is
// none: one host call, nothing built (the glue's GetSharedDataCas).
func sharedCas(key string) (uint32, bool) { return proxywasm.GetSharedDataCas(key) }

// setRequestHeader replaces (or adds) a request header: one host call,
// no error built.
func setRequestHeader(name, value string) { proxywasm.SetHttpRequestHeader(name, value) }

// pairSizes reads the (key size, value size) at raw[at:at+8] in one 8-byte
// load (Wasm is little endian and allows unaligned loads), where
// binary.LittleEndian costs eight byte loads: Go's Wasm backend does not
// merge loads.
func pairSizes(raw []byte, at int) (ks, vs int) {
	_ = raw[at+7]
	x := *(*uint64)(unsafe.Pointer(&raw[at]))
	return int(uint32(x)), int(x >> 32)
}

// runAs runs fn as if the host had called back for context id (see the
// glue's RunAsContext), then returns to the context that was active (back
// is for the emulator's build, which cannot tell).
func runAs(id, back uint32, fn func()) { proxywasm.RunAsContext(id, fn) }
