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
	// only, when set, makes next skip the pairs whose name has another
	// length (kept across view and list: set once, at plugin start).
	only nameLens
}

// nameLens is a set of header name lengths: bit n for length n, bit 63 for
// 63 and more; the empty set stands for every length. The request path
// compares a handful of names among a browser's fifteen or so headers:
// filtering on the length the map already carries skips the others without
// a call or a comparison each.
type nameLens uint64

// lensOf is the set of the lengths of names ("" ignored).
func lensOf(names ...string) nameLens {
	var s nameLens
	for _, n := range names {
		if n != "" {
			s |= 1 << min(len(n), 63)
		}
	}
	return s
}

// has reports whether a name of length n is in s.
func (s nameLens) has(n int) bool { return s == 0 || s&(1<<min(n, 63)) != 0 }

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

// next returns the next pair (whose name length is in h.only, when set);
// ok is false at the end.
func (h *headerPairs) next() (key, value string, ok bool) {
	if h.raw == nil {
		for h.i < h.n {
			p := h.pairs[h.i]
			h.i++
			if h.only.has(len(p[0])) {
				return p[0], p[1], true
			}
		}
		return "", "", false
	}
	raw := h.raw
	for h.i < h.n {
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
		if h.only.has(ks) {
			return view(raw[k : k+ks]), view(raw[v : v+vs]), true
		}
	}
	return "", "", false
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
// case; other hosts may not. The first letters are compared first (without
// case, as ASCII: a cheap test that only lets through a name that may
// match), so that a name of the same length but another start costs no call.
func sameHeaderName(got, name string) bool {
	return len(got) == len(name) && (got == "" || got[0]|0x20 == name[0]|0x20) &&
		(got == name || strings.EqualFold(got, name))
}
