package revocation

import (
	"encoding/binary"

	"fmt"
	"github.com/cespare/xxhash/v2"
	"math/bits"
	"unsafe"
)

// Revoked keys are held by their protocol.KeyHash, and users by userHash,
// not by their text: a table of (hash, value) pairs holds no pointers, so
// the garbage collector never scans it (with 100,000 string keys in a map,
// every GC cycle of the VM walked them all), takes 16 bytes a slot instead
// of a key's 50 to 100, is looked up without hashing a string when the
// caller keeps the hash, and (the revoked-key table) is copied whole, not
// rebuilt, when a worker adopts a published state.

type slot[V any] struct {
	h uint64 // 0: empty
	e V
}

// hashTable maps non-zero 64-bit hashes to values: open addressing with
// linear probing and backward-shift deletion (no tombstones). The home
// slot of h is h scaled to the capacity (its high bits), so any capacity
// works and a table is sized exactly. At least one slot is always empty.
type hashTable[V any] struct {
	slots []slot[V]
	n     int
}

// minSlots is the capacity of the smallest non-empty table.
const minSlots = 8

// capacityFor is the capacity for n entries: load at most 1/2, where a
// lookup of an absent hash (the common case: a live token) probes 2.5
// slots on average (5 at 2/3, with long runs: at 100,000 entries a
// request measured 0.3-0.6 µs slower in Wasm).
func capacityFor(n int) int { return max(minSlots, 2*n+1) }

func newHashTable[V any](hint int) hashTable[V] {
	if hint <= 0 {
		return hashTable[V]{}
	}
	return hashTable[V]{slots: makeSlots[V](capacityFor(hint))}
}

// makeSlots allocates a table's slots with room for the trailer slot that
// Marshal writes after them.
func makeSlots[V any](capacity int) []slot[V] { return make([]slot[V], capacity+1)[:capacity] }

// withTrailer returns the table's memory as bytes, followed by the trailer
// slot (id, tableMagic): a view, not a copy (for an empty table, a new
// trailer alone).
func withTrailer(t *hashTable[entry], id uint64) []byte {
	var all []slot[entry]
	if n := len(t.slots); cap(t.slots) > n {
		all = t.slots[: n+1 : n+1]
	} else {
		all = append(t.slots[:n:n], slot[entry]{})
	}
	all[len(all)-1] = slot[entry]{h: id, e: tableMagic}
	return unsafe.Slice((*byte)(unsafe.Pointer(&all[0])), len(all)*slotLen)
}

// adoptTable makes a table of what withTrailer produced, after checking
// that it is the table its meta describes (trailer id, capacity, count of
// occupied slots, reasons in range). It uses b itself as the table's
// memory when b is aligned for it, else a copy.
func adoptTable(b []byte, id, capacity, count uint64, nReasons int) (hashTable[entry], error) {
	bad := func(what string) (hashTable[entry], error) {
		return hashTable[entry]{}, fmt.Errorf("%w: revoked table: %s", ErrCorrupt, what)
	}
	// (The bound first: a huge capacity would overflow the product.)
	if capacity > 1<<28 || uint64(len(b)) != (capacity+1)*uint64(slotLen) {
		return bad("size does not match its meta")
	}
	if binary.LittleEndian.Uint64(b[len(b)-slotLen:]) != id || binary.LittleEndian.Uint64(b[len(b)-8:]) != tableMagic {
		return bad("not the table of this meta (published again meanwhile?)")
	}
	if capacity == 0 {
		if count != 0 {
			return bad("count")
		}
		return hashTable[entry]{}, nil
	}
	if capacity < minSlots || count >= capacity {
		return bad("size")
	}
	var all []slot[entry]
	if uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(slot[entry]{}) == 0 {
		all = unsafe.Slice((*slot[entry])(unsafe.Pointer(&b[0])), capacity+1)
	} else {
		all = make([]slot[entry], capacity+1)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&all[0])), len(b)), b)
	}
	t := hashTable[entry]{slots: all[:capacity], n: int(count)}
	used := 0
	for _, s := range t.slots {
		if s.h == 0 {
			if s.e != 0 {
				return bad("empty slot with an entry")
			}
			continue
		}
		if int(s.e.reason()) >= nReasons {
			return bad("entry with an unknown reason")
		}
		used++
	}
	if used != t.n {
		return bad("count does not match its meta")
	}
	return t, nil
}

func (t *hashTable[V]) len() int { return t.n }

func (t *hashTable[V]) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

func (t *hashTable[V]) get(h uint64) (V, bool) {
	var zero V
	if t.n == 0 {
		return zero, false
	}
	slots := t.slots
	for i := t.home(h); ; {
		s := slots[i]
		if s.h == h {
			return s.e, true
		}
		if s.h == 0 {
			return zero, false
		}
		if i++; i == len(slots) {
			i = 0
		}
	}
}

// put sets h's entry, returning the previous one.
func (t *hashTable[V]) put(h uint64, e V) (old V, existed bool) {
	if (t.n+1)*5 > len(t.slots)*4 { // above 80%: grow to 50%
		t.resize(2 * (t.n + 1))
	}
	slots := t.slots
	for i := t.home(h); ; {
		s := &slots[i]
		if s.h == h {
			old, s.e = s.e, e
			return old, true
		}
		if s.h == 0 {
			s.h, s.e = h, e
			t.n++
			return old, false
		}
		if i++; i == len(slots) {
			i = 0
		}
	}
}

func (t *hashTable[V]) resize(capacity int) {
	old := t.slots
	t.slots = makeSlots[V](max(minSlots, capacity))
	for _, s := range old {
		if s.h != 0 {
			t.insertNew(s.h, s.e)
		}
	}
}

// insertNew stores a hash known to be absent (resize, copy).
func (t *hashTable[V]) insertNew(h uint64, e V) {
	slots := t.slots
	i := t.home(h)
	for slots[i].h != 0 {
		if i++; i == len(slots) {
			i = 0
		}
	}
	slots[i] = slot[V]{h, e}
}

// del removes h; it reports whether h was there.
func (t *hashTable[V]) del(h uint64) bool {
	if t.n == 0 {
		return false
	}
	slots := t.slots
	i := t.home(h)
	for slots[i].h != h {
		if slots[i].h == 0 {
			return false
		}
		if i++; i == len(slots) {
			i = 0
		}
	}
	t.removeAt(i)
	return true
}

// removeAt empties slot i and shifts back the entries after it that would
// otherwise become unreachable.
func (t *hashTable[V]) removeAt(i int) {
	slots := t.slots
	size := len(slots)
	j := i
	for {
		if j++; j == size {
			j = 0
		}
		s := slots[j]
		if s.h == 0 {
			break
		}
		// s may move to i when i lies on its probe path: home(s)..j.
		k := t.home(s.h)
		if (j-k+size)%size >= (j-i+size)%size {
			slots[i] = s
			i = j
		}
	}
	slots[i] = slot[V]{}
	t.n--
}

// prune removes the entries keep rejects and returns how many.
func (t *hashTable[V]) prune(keep func(V) bool) int {
	removed := 0
	for i := 0; i < len(t.slots); {
		s := t.slots[i]
		if s.h != 0 && !keep(s.e) {
			// The shift may move a later entry into i: look at i again.
			t.removeAt(i)
			removed++
			continue
		}
		i++
	}
	return removed
}

// UserHash is the table hash of a bare user id (without "user:"), for
// TokenKeys.User.
func UserHash(user string) uint64 {
	if h := xxhash.Sum64String(user); h != 0 {
		return h
	}
	return 1
}
