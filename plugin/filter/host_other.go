//go:build !wasip1 || tinygo

package filter

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// now is the clock (see host_wasip1.go for the Wasm build's). Natively it
// reads clock, which the package's tests replace to advance the filter's
// time (export_test.go).
func now() time.Time { return clock() }

var clock = time.Now

// requestHeaders reads the request headers with the SDK's ordinary call
// (see host_wasip1.go for the Wasm build's allocation-free one).
func requestHeaders(h *headerPairs) bool {
	hdrs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		h.list(nil)
		return false
	}
	h.list(hdrs)
	return true
}

// sharedCas returns the CAS of a shared-data entry, false when there is
// none (see host_wasip1.go for the Wasm build's direct call).
func sharedCas(key string) (uint32, bool) {
	_, cas, err := proxywasm.GetSharedData(key)
	return cas, err == nil
}

// setRequestHeader replaces (or adds) a request header (see host_wasip1.go).
func setRequestHeader(name, value string) { _ = proxywasm.ReplaceHttpRequestHeader(name, value) }

// pairSizes reads the (key size, value size) at raw[at:at+8] (see
// host_wasip1.go for the Wasm build's single load).
func pairSizes(raw []byte, at int) (ks, vs int) {
	return int(binary.LittleEndian.Uint32(raw[at:])), int(binary.LittleEndian.Uint32(raw[at+4:]))
}

// runAs runs fn for context id, then makes back the effective context
// again (the SDK's emulator makes the effective context the active one).
func runAs(id, back uint32, fn func()) {
	_ = proxywasm.SetEffectiveContext(id)
	fn()
	_ = proxywasm.SetEffectiveContext(back)
}
