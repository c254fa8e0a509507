package revocation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"unsafe"
)

// A serialised state is two byte strings, published under two keys:
//
// meta (integers varints unless said, strings length-prefixed):
//
//	"MSRV" | format(1 byte)=3 | version | epoch | cursor
//	| nReasons reasons... | table id (8 bytes LE) | table capacity | count
//	| nBlocked (user hash(8 bytes LE) exp reason(1 byte))...
//	| nNotBefore (user hash(8 bytes LE) at exp)...
//	| crc32-IEEE of everything before (4 bytes, little endian)
//
// table: the revoked-key table's slots as they lie in memory (hash, entry:
// two little-endian uint64s), capacity of them, then a trailer slot (table
// id, tableMagic) that pairs it with its meta. Publishing it copies
// nothing; a worker adopting it uses the very buffer it read as its table.
// Only the live state is serialised, not a snapshot being built.
const (
	magic        = "MSRV"
	formatV3     = 3
	headerMinLen = len(magic) + 1
	slotLen      = int(unsafe.Sizeof(slot[entry]{}))
	tableMagic   = 0x4c4254_5652534d // "MSRVTBL" as a little-endian uint64
)

// Header is the prefix of a serialised state.
type Header struct {
	Version uint64
	Epoch   string
	Cursor  int64
}

// ErrCorrupt is wrapped by every Unmarshal and PeekHeader error.
var ErrCorrupt = errors.New("revocation state: corrupt or foreign data")

// Marshal serialises the live state: meta is new; table is a view of the
// state's own memory, valid until the state next changes. Entries of meta
// come in map order: two equal states may serialise differently (compare
// headers, not bytes).
func (s *State) Marshal() (meta, table []byte) {
	t := s.cur
	id := rand.Uint64()
	table = withTrailer(&t.revoked, id)
	size := 80 + len(s.epoch) + t.blocked.len()*18 + t.notBefore.len()*28
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = append(b, formatV3)
	b = binary.AppendUvarint(b, s.version)
	b = appendString(b, s.epoch)
	b = binary.AppendVarint(b, s.cursor)
	b = binary.AppendUvarint(b, uint64(len(s.reasons)))
	for _, r := range s.reasons {
		b = appendString(b, r)
	}
	b = binary.LittleEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, uint64(len(t.revoked.slots)))
	b = binary.AppendUvarint(b, uint64(t.revoked.n))
	b = binary.AppendUvarint(b, uint64(t.blocked.len()))
	for _, sl := range t.blocked.slots {
		if sl.h != 0 {
			b = binary.LittleEndian.AppendUint64(b, sl.h)
			b = binary.AppendVarint(b, sl.e.exp())
			b = append(b, sl.e.reason())
		}
	}
	b = binary.AppendUvarint(b, uint64(t.notBefore.len()))
	for _, sl := range t.notBefore.slots {
		if sl.h != 0 {
			b = binary.LittleEndian.AppendUint64(b, sl.h)
			b = binary.AppendVarint(b, sl.e.at)
			b = binary.AppendVarint(b, sl.e.exp)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), table
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
}

func (r *reader) uvarint(what string) uint64 { return readVarint(r, what, binary.Uvarint) }

func (r *reader) varint(what string) int64 { return readVarint(r, what, binary.Varint) }

// readVarint reads one varint with decode (binary.Uvarint or Varint),
// failing r on a bad one.
func readVarint[T uint64 | int64](r *reader, what string, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns the next length-prefixed string's bytes (aliasing the input).
func (r *reader) bytes(what string, maxLen int) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(maxLen) || n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// entry reads an expiry and a reason index (< nReasons).
func (r *reader) entry(what string, nReasons int) entry {
	exp := r.varint(what)
	reason := r.byte(what)
	if r.err == nil && (exp < 0 || exp > maxExp) {
		r.fail(what)
	}
	if r.err == nil && int(reason) >= nReasons {
		r.fail(what)
	}
	return mkEntry(exp, reason)
}

// hash reads a non-zero table hash (8 bytes, little endian).
func (r *reader) hash(what string) uint64 {
	if r.err != nil {
		return 1
	}
	if len(r.b) < 8 {
		r.fail(what)
		return 1
	}
	h := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	if h == 0 {
		r.fail(what)
		return 1
	}
	return h
}

// count reads an entry count and checks the remaining bytes can hold it.
func (r *reader) count(what string, minEntry int) int {
	n := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/minEntry) {
		r.fail(what)
		return 0
	}
	return int(n)
}

func checkFrame(data []byte) ([]byte, error) {
	if len(data) < headerMinLen+4 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if data[len(magic)] != formatV3 {
		return nil, fmt.Errorf("%w: unknown format %d", ErrCorrupt, data[len(magic)])
	}
	return data[headerMinLen:], nil
}

// PeekHeader reads the header of a serialised state's meta without
// decoding the rest or checking the checksum, so a worker can tell cheaply
// whether a published copy differs from its own.
func PeekHeader(meta []byte) (Header, error) {
	body, err := checkFrame(meta)
	if err != nil {
		return Header{}, err
	}
	r := &reader{b: body}
	var h Header
	h.Version = r.uvarint("version")
	h.Epoch = string(r.bytes("epoch", MaxKeyLen))
	h.Cursor = r.varint("cursor")
	if r.err != nil {
		return Header{}, r.err
	}
	return h, nil
}

// Unmarshal decodes a state serialised by Marshal. The state may take table
// as its own memory: the caller must not use table afterwards. Any
// malformed input, or a meta and table of two different publications,
// yields an error wrapping ErrCorrupt, never a panic.
func Unmarshal(meta, table []byte) (*State, error) {
	body, err := checkFrame(meta)
	if err != nil {
		return nil, err
	}
	payload, sum := meta[:len(meta)-4], meta[len(meta)-4:]
	if crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	// Strings are copied out: the state keeps nothing of meta.
	r := &reader{b: body[:len(body)-4]}
	s := &State{id: newID(), reasonIdx: map[string]uint8{}}
	s.version = r.uvarint("version")
	s.epoch = string(r.bytes("epoch", MaxKeyLen))
	s.cursor = r.varint("cursor")
	if s.cursor < 0 {
		r.fail("cursor")
	}
	nr := r.count("reason count", 1)
	if nr > maxReasons {
		r.fail("reason count")
	}
	for i := 0; i < nr && r.err == nil; i++ {
		reason := string(r.bytes("reason", MaxReasonLen))
		if _, dup := s.reasonIdx[reason]; dup {
			r.fail("reason table (duplicate)")
			break
		}
		s.reasonIdx[reason] = uint8(len(s.reasons))
		s.reasons = append(s.reasons, reason)
	}
	var id uint64
	if r.err == nil && len(r.b) >= 8 {
		id = binary.LittleEndian.Uint64(r.b)
		r.b = r.b[8:]
	} else {
		r.fail("table id")
	}
	capacity := r.uvarint("table capacity")
	count := r.uvarint("table count")
	t := newTable(0)
	n := r.count("blocked count", 10)
	t.blocked = newHashTable[entry](n)
	for i := 0; i < n && r.err == nil; i++ {
		h := r.hash("blocked user")
		if _, dup := t.blocked.put(h, r.entry("blocked entry", len(s.reasons))); dup {
			r.fail("blocked user (duplicate)")
		}
	}
	n = r.count("not-before count", 10)
	t.notBefore = newHashTable[nbEntry](n)
	for i := 0; i < n && r.err == nil; i++ {
		h := r.hash("not-before user")
		if _, dup := t.notBefore.put(h, nbEntry{at: r.varint("not-before at"), exp: r.varint("not-before exp")}); dup {
			r.fail("not-before user (duplicate)")
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing data")
	}
	if r.err != nil {
		return nil, r.err
	}
	if t.revoked, err = adoptTable(table, id, capacity, count, len(s.reasons)); err != nil {
		return nil, err
	}
	s.cur = t
	// Make sure the built-in reasons can still be interned.
	if len(s.reasons) == 0 {
		s.intern("")
	}
	return s, nil
}
