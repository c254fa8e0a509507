package filter

import (
	"encoding/binary"
	"strings"
	"unsafe"
)

// headerPairs iterates over a header map without copying it: in the Wasm
// build over the proxy-wasm serialisation the glue read into its reused
// buffer (see requestHeaders), natively over the SDK's decoded pairs. The
// strings it yields alias that buffer: they are valid only until the next
// requestHeaders call, i.e. within the callback that read them.
//
// The plugin context keeps one and resets it field by field (view, list):
// in the Wasm build a struct this size returned by value or zeroed whole
// costs memory.copy and memory.fill calls (see plugin/core/decide).
type headerPairs struct {
	raw    []byte      // proxy-wasm map serialisation, or nil
	pairs  [][2]string // decoded pairs (native builds)
	n, i   int
	sizeAt int // offset of the next (key size, value size)
	dataAt int // offset of the next key
}

// view iterates over the proxy-wasm serialisation of a header map: u32
// count, count x (u32 key size, u32 value size), then each key and value
// followed by a NUL byte (little endian). A malformed map yields the pairs
// before the fault.
func (h *headerPairs) view(raw []byte) {
	h.raw, h.pairs, h.n, h.i, h.sizeAt, h.dataAt = nil, nil, 0, 0, 0, 0
	if len(raw) < 4 {
		return
	}
	n := int(binary.LittleEndian.Uint32(raw))
	if n > (len(raw)-4)/8 {
		return
	}
	h.raw, h.n, h.sizeAt, h.dataAt = raw, n, 4, 4+8*n
}

// list iterates over decoded pairs.
func (h *headerPairs) list(pairs [][2]string) {
	h.raw, h.pairs, h.n, h.i, h.sizeAt, h.dataAt = nil, pairs, len(pairs), 0, 0, 0
}

// next returns the next pair; ok is false at the end.
func (h *headerPairs) next() (key, value string, ok bool) {
	if h.i >= h.n {
		return "", "", false
	}
	if h.raw == nil {
		p := h.pairs[h.i]
		h.i++
		return p[0], p[1], true
	}
	raw := h.raw
	ks, vs := pairSizes(raw, h.sizeAt) // in bounds: view checked n against len(raw)
	k := h.dataAt
	v := k + ks + 1
	end := v + vs + 1
	if ks < 0 || vs < 0 || end > len(raw) || end < k {
		h.n = h.i // malformed: stop here
		return "", "", false
	}
	h.i++
	h.sizeAt += 8
	h.dataAt = end
	return view(raw[k : k+ks]), view(raw[v : v+vs]), true
}

// view is b as a string without a copy (b must not change while it is used).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// sameHeaderName reports whether a header name from the host is name (a
// lowercase name from the configuration). Envoy hands names over in lower
// case; other hosts may not.
func sameHeaderName(got, name string) bool {
	return len(got) == len(name) && (got == name || strings.EqualFold(got, name))
}
