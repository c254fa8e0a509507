//go:build wasip1 && !tinygo

// Allocation-free host calls for the request path, added to the SDK's
// public proxywasm package (they have no equivalent in v0.24.0).

package proxywasm

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// GetHttpRequestHeadersView returns the request headers in the proxy-wasm
// map serialisation (u32 count, count x (u32 key size, u32 value size), then
// each key and value followed by a NUL byte), read into a buffer the glue
// reuses: no heap allocation, and the result is valid only until the next
// call. nil, true for an empty map; ok is false when the host failed.
func GetHttpRequestHeadersView() (b []byte, ok bool) {
	b, st := internal.GetHeaderMapPairsView(internal.MapTypeHttpRequestHeaders)
	return b, st == internal.StatusOK
}

// GetCurrentTimeNanoseconds is the host's wall clock in nanoseconds since
// the Unix epoch (proxy_get_current_time_nanoseconds: one host call, where
// time.Now costs two WASI clock_time_get calls); ok is false when the
// host failed. (Like the other calls here, it builds no error.)
func GetCurrentTimeNanoseconds() (ns int64, ok bool) {
	ns, st := internal.ProxyGetCurrentTimeNanoseconds()
	return ns, st == internal.StatusOK
}

// GetSharedDataCas returns the CAS of key's shared-data entry; ok is false
// when the host has none (or fails). Nothing is built: no slice, no error
// (for the request path's state stamp, whose value is empty).
func GetSharedDataCas(key string) (cas uint32, ok bool) {
	cas, st := internal.ProxyGetSharedDataCas(internal.StringBytePtr(key), len(key))
	return cas, st == internal.StatusOK
}

// SetHttpRequestHeader is ReplaceHttpRequestHeader without building an
// error: it reports whether the host replaced (or added) the header.
func SetHttpRequestHeader(key, value string) bool {
	st := internal.ProxyReplaceHeaderMapValue(internal.MapTypeHttpRequestHeaders,
		internal.StringBytePtr(key), len(key), internal.StringBytePtr(value), len(value))
	return st == internal.StatusOK
}

// SetHttpContextDeleteHook sets a function the glue calls with every HTTP
// context after the host deleted it (proxy_on_delete), once the SDK no
// longer references it: e.g. to reuse it for a later stream.
func SetHttpContextDeleteHook(fn func(types.HttpContext)) {
	internal.SetHttpContextDeleteHook(fn)
}
