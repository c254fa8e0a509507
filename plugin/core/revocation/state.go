// Package revocation holds what one worker knows about revoked sessions:
// revoked keys (sid:/fp:) with per-entry expiry and reason, blocked users,
// and per-user not-before times, each held by a 64-bit hash in a
// pointer-free table (see hashtable.go). It applies sync-feed pages (JSON or
// protocol's binary form) atomically, builds full snapshots aside and swaps
// them in when complete, drops expired entries, and serialises the state
// for one worker to publish through proxy-wasm shared data and the others
// to adopt.
//
// A State is not safe for concurrent use (one per VM; the VM is
// single-threaded). Times are Unix seconds.
package revocation

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// Leeway is added to an entry's expiry before it is dropped, matching the
// clock-skew leeway the decision grants tokens past their exp: a revoked
// token must stay refused as long as it could still be accepted.
const Leeway = 60

// Limits on the feed.
const (
	MaxKeyLen    = protocol.MaxKeyLen // bytes of a key or user id
	MaxReasonLen = 64
	maxReasons   = 255
)

// entry packs an expiry (Unix seconds, 0 = never; at most maxExp) and a
// reason index into 8 bytes.
type entry uint64

const maxExp = 1<<56 - 1

func mkEntry(exp int64, reason uint8) entry {
	if exp < 0 || exp > maxExp {
		exp = 0 // cannot happen for validated input; never expire rather than wrap
	}
	return entry(uint64(exp)<<8 | uint64(reason))
}

func (e entry) exp() int64    { return int64(uint64(e) >> 8) }
func (e entry) reason() uint8 { return uint8(e) }

type nbEntry struct {
	at  int64 // tokens with iat < at are refused
	exp int64
}

func live(exp, now int64) bool { return exp == 0 || now <= exp+Leeway }

// table is one generation of revocation data.
type table struct {
	revoked   hashTable[entry]   // by protocol.KeyHash of "sid:..." and "fp:..." keys
	blocked   hashTable[entry]   // by userHash
	notBefore hashTable[nbEntry] // by userHash
}

func newTable(hint int) *table {
	return &table{revoked: newHashTable[entry](hint)}
}

func (t *table) revokedLen() int { return t.revoked.len() }

// State is the revocation state of one worker.
type State struct {
	id      uint64 // random, for Stamp: two States never share one
	epoch   string
	cursor  int64
	version uint64
	cur     *table

	// pending is a snapshot being built (after a Reset page with More),
	// and the lifts (unrevoke, unblock) it listed (see keep.go).
	pending       *table
	pendingEpoch  string
	pendingCursor int64
	pendingLifts  lifts

	reasons   []string
	reasonIdx map[string]uint8
	// cache of the last reason interned (pages repeat the same reason)
	lastReason    string
	lastReasonIdx uint8
	lastReasonOK  bool
}

// New returns an empty state with no epoch (the first sync must be a
// snapshot: cursor 0).
func New() *State {
	s := &State{id: newID(), cur: newTable(0), reasonIdx: map[string]uint8{}}
	for _, r := range []string{"", protocol.ReasonLogout, protocol.ReasonManual, protocol.ReasonIdle,
		protocol.ReasonExpired, protocol.ReasonBlocked, protocol.ReasonReuse, protocol.ReasonNotBefore,
		protocol.ReasonPolicy} {
		s.intern(r)
	}
	return s
}

func (s *State) intern(r string) uint8 {
	if r == s.lastReason && s.lastReasonOK {
		return s.lastReasonIdx
	}
	if i, ok := s.reasonIdx[r]; ok {
		s.lastReason, s.lastReasonIdx, s.lastReasonOK = s.reasons[i], i, true
		return i
	}
	if len(s.reasons) >= maxReasons {
		return 0
	}
	r = strings.Clone(r)
	i := uint8(len(s.reasons))
	s.reasons = append(s.reasons, r)
	s.reasonIdx[r] = i
	return i
}

func (s *State) reason(i uint8) string {
	if int(i) < len(s.reasons) {
		return s.reasons[i]
	}
	return ""
}

func newID() uint64 { return rand.Uint64() | 1 }

// Stamp identifies the live state's content: it changes whenever an entry
// may have been added (a page applied, a snapshot swapped in, another
// State), and is never 0. Between two equal stamps entries can only have
// expired or been pruned, so a token found clear stays clear: a caller may
// keep that answer for the stamp (as decide does per cached token).
type Stamp struct{ id, version uint64 }

// Stamp returns the live state's stamp.
func (s *State) Stamp() Stamp { return Stamp{s.id, s.version} }

// Epoch is the epoch of the live state ("" before the first snapshot).
func (s *State) Epoch() string { return s.epoch }

// Cursor is the seq of the last change applied to the live state.
func (s *State) Cursor() int64 { return s.cursor }

// Version counts successful changes of the live state (pages applied,
// snapshots swapped in). Together with Epoch and Cursor it tells whether a
// published copy differs from this one. Prune does not change it.
func (s *State) Version() uint64 { return s.version }

// Next returns the epoch and cursor to send with the next sync request:
// those of the snapshot being built, if any, else those of the live state.
func (s *State) Next() (epoch string, cursor int64) {
	if s.pending != nil {
		return s.pendingEpoch, s.pendingCursor
	}
	return s.epoch, s.cursor
}

// Building reports whether a snapshot is being built (pages pending).
func (s *State) Building() bool { return s.pending != nil }

// AbortSnapshot drops a snapshot being built (e.g. after a failed fetch of
// its next page); the live state is untouched.
func (s *State) AbortSnapshot() {
	s.pending, s.pendingEpoch, s.pendingCursor, s.pendingLifts = nil, "", 0, lifts{}
}

// Counts of live-state entries (including expired ones not yet pruned).
type Counts struct {
	Revoked, Blocked, NotBefore int
}

// Len returns the number of entries of the live state.
func (s *State) Len() Counts {
	return Counts{Revoked: s.cur.revokedLen(), Blocked: s.cur.blocked.len(), NotBefore: s.cur.notBefore.len()}
}

func (s *State) result(e entry, ok bool, now int64) (string, bool) {
	if !ok || !live(e.exp(), now) {
		return "", false
	}
	return s.reason(e.reason()), true
}

// Revoked reports whether key ("sid:<v>" or "fp:<v>") is revoked at now
// (Unix seconds), with the reason ("" when the feed gave none). It does not
// allocate.
func (s *State) Revoked(key string, now int64) (reason string, ok bool) {
	if s.cur.revoked.len() == 0 {
		return "", false
	}
	e, ok := s.cur.revoked.get(protocol.KeyHash(key))
	return s.result(e, ok, now)
}

// Verdict is what the state says of one token (CheckToken).
type Verdict uint8

// Verdicts, in the order CheckToken tests them.
const (
	Clear          Verdict = iota // none of the below
	UserBlocked                   // 403
	SessionRevoked                // the session key is revoked
	TokenRevoked                  // the token's fingerprint is revoked
	NotBeforeCut                  // the user's not-before time is after the token's iat
)

// TokenKeys are the hashes of a token's lookup keys: UserHash of its user
// (0: none), protocol.KeyHash of its "sid:" key (0: none), of its "fp:"
// key (0: none); IssuedAt is its iat (HasIssuedAt false: none).
type TokenKeys struct {
	User, Session, Fingerprint uint64
	IssuedAt                   int64
	HasIssuedAt                bool
}

// CheckToken applies the whole state to one token in one call (the
// lookups Blocked, RevokedHash, NotBeforeHash each make): blocked user,
// revoked session, revoked token, not-before cut, in that order. reason is
// the feed's reason ("" when it gave none) for the revocations and block.
func (s *State) CheckToken(k *TokenKeys, now int64) (v Verdict, reason string) {
	t := s.cur
	if k.User != 0 && t.blocked.n != 0 {
		if e, ok := t.blocked.get(k.User); ok && live(e.exp(), now) {
			if r := s.reason(e.reason()); r != "" {
				return UserBlocked, r
			}
			return UserBlocked, protocol.ReasonBlocked
		}
	}
	if t.revoked.n != 0 {
		if k.Session != 0 {
			if e, ok := t.revoked.get(k.Session); ok && live(e.exp(), now) {
				return SessionRevoked, s.reason(e.reason())
			}
		}
		if k.Fingerprint != 0 {
			if e, ok := t.revoked.get(k.Fingerprint); ok && live(e.exp(), now) {
				return TokenRevoked, s.reason(e.reason())
			}
		}
	}
	if k.User != 0 && t.notBefore.n != 0 {
		if e, ok := t.notBefore.get(k.User); ok && live(e.exp, now) && (!k.HasIssuedAt || k.IssuedAt < e.at) {
			return NotBeforeCut, protocol.ReasonNotBefore
		}
	}
	return Clear, ""
}

// Blocked reports whether the user (bare id, without "user:") is blocked.
func (s *State) Blocked(user string, now int64) (reason string, ok bool) {
	if s.cur.blocked.len() == 0 {
		return "", false
	}
	e, ok := s.cur.blocked.get(UserHash(user))
	r, ok := s.result(e, ok, now)
	if !ok {
		return "", false
	}
	if r == "" {
		r = protocol.ReasonBlocked
	}
	return r, true
}

// NotBefore returns the user's not-before time: tokens with iat before it
// are refused.
func (s *State) NotBefore(user string, now int64) (at int64, ok bool) {
	if s.cur.notBefore.len() == 0 {
		return 0, false
	}
	e, ok := s.cur.notBefore.get(UserHash(user))
	if !ok || !live(e.exp, now) {
		return 0, false
	}
	return e.at, true
}

// Prune drops expired entries (past exp plus Leeway) from the live state and
// from a snapshot being built, and returns how many it dropped.
func (s *State) Prune(now time.Time) int {
	n := s.cur.prune(now.Unix())
	if s.pending != nil {
		n += s.pending.prune(now.Unix())
	}
	return n
}

func (t *table) prune(now int64) int {
	n := t.revoked.prune(func(e entry) bool { return live(e.exp(), now) })
	n += t.blocked.prune(func(e entry) bool { return live(e.exp(), now) })
	n += t.notBefore.prune(func(e nbEntry) bool { return live(e.exp, now) })
	return n
}
