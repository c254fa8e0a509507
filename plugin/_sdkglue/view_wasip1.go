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
// call. nil, nil for an empty map.
func GetHttpRequestHeadersView() ([]byte, error) {
	b, st := internal.GetHeaderMapPairsView(internal.MapTypeHttpRequestHeaders)
	return b, internal.StatusToError(st)
}

// GetCurrentTimeNanoseconds is the host's wall clock in nanoseconds since
// the Unix epoch (proxy_get_current_time_nanoseconds: one host call, where
// time.Now costs two WASI clock_time_get calls).
func GetCurrentTimeNanoseconds() (int64, error) {
	ns, st := internal.ProxyGetCurrentTimeNanoseconds()
	return ns, internal.StatusToError(st)
}

// SetHttpContextDeleteHook sets a function the glue calls with every HTTP
// context after the host deleted it (proxy_on_delete), once the SDK no
// longer references it: e.g. to reuse it for a later stream.
func SetHttpContextDeleteHook(fn func(types.HttpContext)) {
	internal.SetHttpContextDeleteHook(fn)
}
