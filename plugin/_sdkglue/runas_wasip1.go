//go:build wasip1 && !tinygo

// Acting for another context, added to the SDK's public proxywasm package.

package proxywasm

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal"

// RunAsContext runs fn as if the host had called back for contextID: the
// host's effective context (proxy_set_effective_context: which stream
// proxy_continue_stream, header calls and local replies act on) and the
// SDK's active context (which context a callout dispatched by fn belongs
// to, and so whether its answer is dropped when that context is gone) are
// contextID; both are restored afterwards. The filter uses it to resume a
// stream it held from a root-context callback, and to dispatch a callout
// that belongs to the root context from a stream's callback.
func RunAsContext(contextID uint32, fn func()) {
	prev := internal.VMStateGetActiveContextID()
	internal.VMStateSetActiveContextID(contextID)
	_ = internal.ProxySetEffectiveContext(contextID)
	defer func() {
		internal.VMStateSetActiveContextID(prev)
		_ = internal.ProxySetEffectiveContext(prev)
	}()
	fn()
}
