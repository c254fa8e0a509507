package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// EncodePairs serialises header pairs in the proxy-wasm format: u32 count,
// then u32 key length and u32 value length per pair, then per pair the key
// bytes, a NUL, the value bytes and a NUL. All integers are little-endian.
func EncodePairs(pairs [][2]string) []byte {
	out := make([]byte, pairsLen(pairs))
	encodePairsInto(out, pairs)
	return out
}

// pairsLen is the length of pairs' encoding.
func pairsLen(pairs [][2]string) int {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	return size
}

// encodePairsInto writes pairs' encoding into out (pairsLen(pairs) bytes,
// zeroed or not).
func encodePairsInto(out []byte, pairs [][2]string) {
	binary.LittleEndian.PutUint32(out, uint32(len(pairs)))
	off := 4
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(out[off:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(out[off+4:], uint32(len(p[1])))
		off += 8
	}
	for _, p := range pairs {
		off += copy(out[off:], p[0])
		out[off] = 0
		off += copy(out[off+1:], p[1]) + 1
		out[off] = 0
		off++
	}
}

var errPairs = errors.New("malformed header pairs")

// DecodePairs parses the proxy-wasm header pairs format. An empty input is an
// empty map. Malformed input is an error, never a panic.
func DecodePairs(b []byte) ([][2]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 4", errPairs, len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n > uint64(len(b)-4)/8 {
		return nil, fmt.Errorf("%w: count %d does not fit in %d bytes", errPairs, n, len(b))
	}
	sizes := b[4 : 4+8*n]
	data := b[4+8*n:]
	pairs := make([][2]string, n)
	off := uint64(0)
	for i := uint64(0); i < n; i++ {
		kl := uint64(binary.LittleEndian.Uint32(sizes[8*i:]))
		vl := uint64(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if off+kl+1+vl+1 > uint64(len(data)) {
			return nil, fmt.Errorf("%w: pair %d overruns the data", errPairs, i)
		}
		k := data[off : off+kl]
		if data[off+kl] != 0 {
			return nil, fmt.Errorf("%w: key %d is not NUL-terminated", errPairs, i)
		}
		off += kl + 1
		v := data[off : off+vl]
		if data[off+vl] != 0 {
			return nil, fmt.Errorf("%w: value %d is not NUL-terminated", errPairs, i)
		}
		off += vl + 1
		pairs[i] = [2]string{string(k), string(v)}
	}
	return pairs, nil
}

// headerMap is an ordered multimap with Envoy's lower-case keys.
type headerMap struct {
	pairs [][2]string
	// inline holds the pairs of a small map: one allocation, not two.
	inline [8][2]string
}

func newHeaderMap(pairs [][2]string) *headerMap {
	m := &headerMap{}
	m.set(pairs)
	return m
}

// set makes m hold pairs (keys lower-cased), in its inline array when they
// fit. What m held before is overwritten: nothing else may refer to it.
func (m *headerMap) set(pairs [][2]string) {
	if len(pairs) <= len(m.inline) {
		clear(m.inline[len(pairs):]) // no stale strings kept alive
		m.pairs = m.inline[:0]
	} else {
		m.pairs = make([][2]string, 0, len(pairs))
	}
	for _, p := range pairs {
		m.pairs = append(m.pairs, [2]string{lowerKey(p[0]), p[1]})
	}
}

// lowerKey is strings.ToLower(key), without a call for a key that is
// already lower-case ASCII (nearly every header name).
func lowerKey(key string) string {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return strings.ToLower(key)
		}
	}
	return key
}

func (m *headerMap) get(key string) (string, bool) {
	for _, p := range m.pairs {
		if p[0] == key || strings.EqualFold(p[0], key) {
			return p[1], true
		}
	}
	return "", false
}

// getBytes is get for a key in guest memory, without allocating.
func (m *headerMap) getBytes(key []byte) (string, bool) {
	for _, p := range m.pairs {
		if equalFoldASCII(p[0], key) {
			return p[1], true
		}
	}
	return "", false
}

func equalFoldASCII(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c, d := s[i], b[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func (m *headerMap) add(key, value string) { m.addKey(lowerKey(key), value) }

// addKey is add for a key already lower-case.
func (m *headerMap) addKey(key, value string) {
	m.pairs = append(m.pairs, [2]string{key, value})
}

// replace sets the first entry of key to value and drops the others (Envoy's
// setCopy); a missing key is added.
func (m *headerMap) replace(key, value string) { m.replaceKey(lowerKey(key), value) }

// replaceKey is replace for a key already lower-case.
func (m *headerMap) replaceKey(key, value string) {
	out := m.pairs[:0]
	found := false
	for _, p := range m.pairs {
		if p[0] == key {
			if found {
				continue
			}
			found = true
			p[1] = value
		}
		out = append(out, p)
	}
	m.pairs = out
	if !found {
		m.pairs = append(m.pairs, [2]string{key, value})
	}
}

func (m *headerMap) remove(key string) { m.removeKey(lowerKey(key)) }

// removeKey is remove for a key already lower-case.
func (m *headerMap) removeKey(key string) {
	out := m.pairs[:0]
	for _, p := range m.pairs {
		if p[0] != key {
			out = append(out, p)
		}
	}
	m.pairs = out
}

func (m *headerMap) clone() [][2]string {
	if m == nil {
		return nil
	}
	return append([][2]string(nil), m.pairs...)
}

func (m *headerMap) encodedSize() int {
	size := 4
	for _, p := range m.pairs {
		size += 10 + len(p[0]) + len(p[1])
	}
	return size
}

// valueArena holds copies of header values the guest sets on a stream, in
// a buffer inside the stream, so setting one costs no allocation. A byte
// handed out is never written again: each string stays valid, and keeps
// its stream alive, as long as it is referenced. A value that no longer
// fits is an ordinary copy.
type valueArena struct {
	buf  [valueArenaSize]byte
	used int
}

// valueArenaSize fits a session id and a user id, the values the filter
// sets on every request.
const valueArenaSize = 128

// string returns a copy of b (guest memory) as a string.
func (a *valueArena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > len(a.buf)-a.used {
		return string(b)
	}
	dst := a.buf[a.used : a.used+len(b)]
	copy(dst, b)
	a.used += len(b)
	return unsafe.String(&dst[0], len(dst))
}
