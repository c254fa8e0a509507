package revocation

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// Local revocations are the ones a proxy made itself and sessionsvc has
// not confirmed through its feed yet: a logout whose report (POST
// /internal/v1/revoke) could not be delivered, because sessionsvc was down
// or refused it. The proxy enforces them at once on all its workers (the
// list is published in shared data beside the state) and keeps enforcing
// them while sessionsvc is down; the report is delivered when sessionsvc is
// back, and an entry is dropped once it is delivered and the feed carries
// it (the feed's state then refuses the token), or once its token expired.
//
// The list is small and bounded (NewLocal's limit): a request looks its
// token up in a pointer-free hash table, and not at all when the list is
// empty.

// LocalEntry is one local revocation.
type LocalEntry struct {
	ID        uint64   // random, non-zero: names the entry across copies of the list
	Keys      []string // the token's keys ("sid:<v>", "fp:<...>"), as reported
	Reason    string   // protocol.ReasonLogout
	Exp       int64    // the token's expiry (Unix seconds; 0: none known, kept until delivered and carried)
	At        int64    // when it was made (Unix milliseconds)
	Delivered bool     // sessionsvc answered 2xx to its report

	hashes []uint64 // protocol.KeyHash of Keys
}

// Limits of a local entry.
const (
	maxLocalKeys = 4
	// DefaultLocalLimit is the default bound on local revocations.
	DefaultLocalLimit = 1024
	// MaxLocalLimit bounds any limit (the list is copied whole between workers).
	MaxLocalLimit = 65536
)

type localRef struct {
	exp int64
	i   int32 // index in list
}

// Local is a list of local revocations, oldest first, with an index of
// their keys. It is not safe for concurrent use.
type Local struct {
	limit int
	list  []LocalEntry
	index hashTable[localRef]
}

// NewLocal returns an empty list holding at most limit entries (limit <= 0:
// DefaultLocalLimit; at most MaxLocalLimit).
func NewLocal(limit int) *Local {
	if limit <= 0 {
		limit = DefaultLocalLimit
	}
	if limit > MaxLocalLimit {
		limit = MaxLocalLimit
	}
	return &Local{limit: limit}
}

// Len is the number of entries.
func (l *Local) Len() int {
	if l == nil {
		return 0
	}
	return len(l.list)
}

// Limit is the most entries the list holds.
func (l *Local) Limit() int { return l.limit }

// Entries returns the entries, oldest first (shared with the list: do not
// modify).
func (l *Local) Entries() []LocalEntry { return l.list }

// Check reports whether the token with keys k is revoked by a local entry
// at now (Unix seconds), with its reason. It does not allocate, and costs
// one comparison when the list is empty.
func (l *Local) Check(k *TokenKeys, now int64) (reason string, ok bool) {
	if l == nil || l.index.n == 0 {
		return "", false
	}
	if k.Session != 0 {
		if r, ok := l.index.get(k.Session); ok && live(r.exp, now) {
			return l.list[r.i].Reason, true
		}
	}
	if k.Fingerprint != 0 {
		if r, ok := l.index.get(k.Fingerprint); ok && live(r.exp, now) {
			return l.list[r.i].Reason, true
		}
	}
	return "", false
}

// AddResult is what Add did.
type AddResult uint8

// AddResults.
const (
	LocalAdded   AddResult = iota // a new entry
	LocalPresent                  // an entry already named one of its keys: that one is kept (its expiry extended)
	LocalFull                     // the list is full (even after dropping expired entries): nothing added
	LocalInvalid                  // no usable key
)

// NewLocalEntry makes an entry for a token's keys (keys longer than
// protocol.MaxKeyLen, or beyond the fourth, are left out), with a new ID.
func NewLocalEntry(keys []string, reason string, exp, atMs int64) LocalEntry {
	e := LocalEntry{ID: rand.Uint64() | 1, Reason: reason, Exp: exp, At: atMs}
	if len(e.Reason) > MaxReasonLen {
		e.Reason = protocol.ReasonLogout
	}
	if e.Exp < 0 || e.Exp > maxExp {
		e.Exp = 0
	}
	for _, k := range keys {
		if k != "" && len(k) <= MaxKeyLen && len(e.Keys) < maxLocalKeys {
			e.Keys = append(e.Keys, k)
		}
	}
	return e
}

// Add appends e (made by NewLocalEntry), unless one of its keys is
// already listed, or the list is full: the oldest entries are kept, and
// expired ones (at now, Unix seconds) are dropped first to make room.
func (l *Local) Add(e LocalEntry, now int64) AddResult {
	if len(e.Keys) == 0 || e.ID == 0 {
		return LocalInvalid
	}
	e.hashes = keyHashes(e.Keys)
	for _, h := range e.hashes {
		if r, ok := l.index.get(h); ok {
			old := &l.list[r.i]
			if old.Exp != 0 && (e.Exp == 0 || e.Exp > old.Exp) {
				old.Exp = e.Exp
				l.reindex()
			}
			return LocalPresent
		}
	}
	if len(l.list) >= l.limit {
		l.prune(func(x *LocalEntry) bool { return live(x.Exp, now) })
		if len(l.list) >= l.limit {
			return LocalFull
		}
	}
	l.list = append(l.list, e)
	l.indexEntry(len(l.list) - 1)
	return LocalAdded
}

func keyHashes(keys []string) []uint64 {
	hs := make([]uint64, len(keys))
	for i, k := range keys {
		hs[i] = protocol.KeyHash(k)
	}
	return hs
}

// indexEntry puts entry i's keys in the index (a key listed twice keeps
// the later expiry).
func (l *Local) indexEntry(i int) {
	e := &l.list[i]
	for _, h := range e.hashes {
		if r, ok := l.index.get(h); ok && (r.exp == 0 || e.Exp != 0 && r.exp >= e.Exp) {
			continue
		}
		l.index.put(h, localRef{exp: e.Exp, i: int32(i)})
	}
}

func (l *Local) reindex() {
	l.index = newHashTable[localRef](2 * len(l.list))
	for i := range l.list {
		l.indexEntry(i)
	}
}

// prune keeps the entries keep accepts, in order; it reports how many it
// dropped.
func (l *Local) prune(keep func(*LocalEntry) bool) int {
	n := 0
	for i := range l.list {
		if keep(&l.list[i]) {
			l.list[n] = l.list[i]
			n++
		}
	}
	dropped := len(l.list) - n
	if dropped > 0 {
		for i := n; i < len(l.list); i++ {
			l.list[i] = LocalEntry{}
		}
		l.list = l.list[:n]
		l.reindex()
	}
	return dropped
}

// NextUndelivered returns the oldest entry whose report is not delivered.
func (l *Local) NextUndelivered() (LocalEntry, bool) {
	for _, e := range l.list {
		if !e.Delivered {
			return e, true
		}
	}
	return LocalEntry{}, false
}

// Undelivered counts the entries whose report is not delivered.
func (l *Local) Undelivered() int {
	n := 0
	for i := range l.list {
		if !l.list[i].Delivered {
			n++
		}
	}
	return n
}

// MarkDelivered records that entry id's report was delivered; false when
// it is not listed (or already delivered).
func (l *Local) MarkDelivered(id uint64) bool {
	for i := range l.list {
		if e := &l.list[i]; e.ID == id && !e.Delivered {
			e.Delivered = true
			return true
		}
	}
	return false
}

// carried reports whether st refuses e's token at now: one of its keys is
// revoked there.
func carried(e *LocalEntry, st *State, now int64) bool {
	if st == nil || st.cur.revoked.n == 0 {
		return false
	}
	for _, h := range e.hashes {
		if x, ok := st.cur.revoked.get(h); ok && live(x.exp(), now) {
			return true
		}
	}
	return false
}

// done reports whether e can be forgotten at now against st: its token
// expired, or its report was delivered and st carries it.
func done(e *LocalEntry, st *State, now int64) bool {
	return !live(e.Exp, now) || e.Delivered && carried(e, st, now)
}

// Prunable reports whether Prune would drop anything (cheap when empty).
func (l *Local) Prunable(st *State, now int64) bool {
	if l == nil {
		return false
	}
	for i := range l.list {
		if done(&l.list[i], st, now) {
			return true
		}
	}
	return false
}

// Prune drops the entries whose token expired at now, and those delivered
// that st carries; it reports how many.
func (l *Local) Prune(st *State, now int64) int {
	return l.prune(func(e *LocalEntry) bool { return !done(e, st, now) })
}

// Replace makes l a copy of next (a newer version of the shared list), but
// keeps those of l's entries next lacks that st does not carry yet and
// that have not expired: another worker dropped them against its own
// state, which this worker may not have adopted yet, and a worker never
// accepts a token it refused. Kept entries count as delivered (they are
// reported no more). It returns how many it kept.
func (l *Local) Replace(next *Local, st *State, now int64) int {
	var kept []LocalEntry
	for i := range l.list {
		e := &l.list[i]
		if next.has(e.ID) || !live(e.Exp, now) || carried(e, st, now) {
			continue
		}
		x := *e
		x.Delivered = true
		kept = append(kept, x)
	}
	l.list = append(l.list[:0:0], next.list...)
	for _, e := range kept {
		dup := false
		for _, h := range e.hashes {
			if _, ok := next.index.get(h); ok {
				dup = true
				break
			}
		}
		if !dup {
			l.list = append(l.list, e)
		}
	}
	l.reindex()
	return len(kept)
}

func (l *Local) has(id uint64) bool {
	for i := range l.list {
		if l.list[i].ID == id {
			return true
		}
	}
	return false
}

// Clone returns a copy of l.
func (l *Local) Clone() *Local {
	c := &Local{limit: l.limit, list: append([]LocalEntry(nil), l.list...)}
	c.reindex()
	return c
}

// A serialised list:
//
//	"MSLR" | format(1 byte)=1 | count
//	| (id(8 bytes LE) at exp flags(1 byte: 1 delivered) reason nKeys keys...)...
//	| crc32-IEEE of everything before (4 bytes LE)
//
// integers varints, strings length-prefixed. An empty value is an empty
// list (shared data has no delete).
const (
	localMagic    = "MSLR"
	localFormatV1 = 1
)

// Marshal serialises the list.
func (l *Local) Marshal() []byte {
	if len(l.list) == 0 {
		return nil
	}
	b := make([]byte, 0, 16+len(l.list)*96)
	b = append(b, localMagic...)
	b = append(b, localFormatV1)
	b = binary.AppendUvarint(b, uint64(len(l.list)))
	for i := range l.list {
		e := &l.list[i]
		b = binary.LittleEndian.AppendUint64(b, e.ID)
		b = binary.AppendVarint(b, e.At)
		b = binary.AppendVarint(b, e.Exp)
		var flags byte
		if e.Delivered {
			flags = 1
		}
		b = append(b, flags)
		b = appendString(b, e.Reason)
		b = binary.AppendUvarint(b, uint64(len(e.Keys)))
		for _, k := range e.Keys {
			b = appendString(b, k)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// UnmarshalLocal reads a list Marshal wrote (empty data: an empty list)
// into a list holding at most limit entries (NewLocal); entries beyond
// the limit (a list written under a larger one) are left out, the oldest
// kept.
func UnmarshalLocal(data []byte, limit int) (*Local, error) {
	l := NewLocal(limit)
	if len(data) == 0 {
		return l, nil
	}
	if len(data) < len(localMagic)+1+4 || string(data[:len(localMagic)]) != localMagic {
		return nil, fmt.Errorf("%w: bad local list magic", ErrCorrupt)
	}
	if data[len(localMagic)] != localFormatV1 {
		return nil, fmt.Errorf("%w: unknown local list format %d", ErrCorrupt, data[len(localMagic)])
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: local list checksum", ErrCorrupt)
	}
	r := &reader{b: body[len(localMagic)+1:]}
	n := r.count("local count", 8+1+1+1+1+1)
	for i := 0; i < n && r.err == nil; i++ {
		var e LocalEntry
		if len(r.b) < 8 {
			r.fail("local id")
			break
		}
		e.ID = binary.LittleEndian.Uint64(r.b)
		r.b = r.b[8:]
		e.At = r.varint("local at")
		e.Exp = r.varint("local exp")
		flags := r.byte("local flags")
		e.Delivered = flags&1 != 0
		e.Reason = string(r.bytes("local reason", MaxReasonLen))
		nk := r.uvarint("local key count")
		if r.err == nil && (nk == 0 || nk > maxLocalKeys) {
			r.fail("local key count")
		}
		for j := uint64(0); j < nk && r.err == nil; j++ {
			k := r.bytes("local key", MaxKeyLen)
			if r.err == nil && len(k) == 0 {
				r.fail("local key")
			}
			e.Keys = append(e.Keys, string(k))
		}
		if r.err == nil && (e.ID == 0 || e.Exp < 0 || e.Exp > maxExp) {
			r.fail("local entry")
		}
		if r.err == nil && len(l.list) < l.limit {
			e.hashes = keyHashes(e.Keys)
			l.list = append(l.list, e)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("local trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	l.reindex()
	return l, nil
}

// Carries reports whether the state refuses a token named by any of keys
// at now (Unix seconds): one of them is revoked.
func (s *State) Carries(keys []string, now int64) bool {
	e := LocalEntry{hashes: keyHashes(keys)}
	return carried(&e, s, now)
}
