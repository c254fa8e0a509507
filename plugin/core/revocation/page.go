package revocation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/meshsession/meshsession/plugin/core/internal/jsonscan"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// MaxPageSize bounds a sync page body.
const MaxPageSize = 64 << 20

// PageError explains why a page was rejected. A rejected page changes
// nothing.
type PageError struct {
	Index int // index of the offending change, -1 for the page itself
	Msg   string
}

func (e *PageError) Error() string {
	if e.Index < 0 {
		return "sync page rejected: " + e.Msg
	}
	return fmt.Sprintf("sync page rejected: changes[%d]: %s", e.Index, e.Msg)
}

// ErrNeedSnapshot: an incremental page arrived while the state has no epoch,
// or for another epoch. Request a snapshot (cursor 0).
var ErrNeedSnapshot = errors.New("sync page rejected: incremental page does not continue this state; request a snapshot (cursor=0)")

// Applied describes what ApplyPage did.
type Applied struct {
	Epoch   string // the page's epoch
	Cursor  int64  // the page's cursor
	More    bool   // more pages follow: fetch again now with Next()
	Reset   bool   // the page started a snapshot
	Changes int    // number of changes in the page
	Swapped bool   // a complete snapshot replaced the live state
	Skipped int    // changes already expired at now, not stored
	// ServerNow is the page's "now" (sessionsvc's clock), 0 when absent.
	ServerNow int64
	// When Swapped replaced a state that had an epoch: that epoch, and
	// what the new state kept of the old one although the snapshot lacked
	// it (see keep.go).
	PrevEpoch string
	Kept      Kept
}

type op uint8

const (
	opRevoke op = iota + 1
	opUnrevoke
	opBlock
	opUnblock
	opNotBefore
)

type change struct {
	seq    int64
	op     op
	key    string // revoke/unrevoke: full key; others: bare user id
	hash   uint64 // revoke/unrevoke in a binary page: the key's hash (key is "")
	exp    int64
	at     int64
	reason string
	ri     uint8 // binary page: the reason's index (in the page, then in the state)
	binary bool
}

// reasonOf is the state's index of c's reason.
func (s *State) reasonOf(c *change) uint8 {
	if c.binary {
		return c.ri
	}
	return s.intern(c.reason)
}

type pageHeader struct {
	epoch  string
	cursor int64
	more   bool
	reset  bool
	now    int64
	total  int64 // a Reset page's hint of the snapshot's size
}

// ApplyPage applies one sync page (protocol.SyncPage as JSON, or in
// protocol's binary form) at now.
//
//   - A Reset page starts a fresh snapshot (discarding one being built); its
//     changes and those of the following pages (Reset false, same epoch,
//     More chaining) go into it, and it replaces the live state when the
//     page with More=false is applied. Until then lookups use the old state.
//   - Any other page continues the snapshot being built, or else the live
//     state; its epoch must match and its changes' seqs must be above the
//     cursor (ErrNeedSnapshot when the epoch differs or there is none yet).
//
// The page is rejected whole (a *PageError, nothing changed) when it is not
// valid JSON, a field has the wrong type, a change is invalid (unknown op,
// missing key or user, bad key prefix, negative times, over-long strings)
// or seqs are not strictly ascending. Entries already expired at now are
// not stored.
func (s *State) ApplyPage(data []byte, now time.Time) (Applied, error) {
	if len(data) > MaxPageSize {
		return Applied{}, &PageError{Index: -1, Msg: fmt.Sprintf("page larger than %d bytes", MaxPageSize)}
	}
	if isBinaryPage(data) {
		return s.applyBinary(data, now.Unix())
	}
	// The body is only read while applying; stored strings are copied.
	js := ""
	if len(data) > 0 {
		js = unsafe.String(&data[0], len(data))
	}
	h, changes, err := parsePage(js)
	if err != nil {
		return Applied{}, err
	}
	after, err := s.continues(&h)
	if err != nil {
		return Applied{}, err
	}
	last := after
	for i := range changes {
		if c := &changes[i]; c.seq <= last {
			return Applied{}, &PageError{Index: i, Msg: fmt.Sprintf("seq %d not above %d (seqs must ascend past the cursor)", c.seq, last)}
		} else {
			last = c.seq
		}
	}
	if err := checkCursor(&h, len(changes), last); err != nil {
		return Applied{}, err
	}
	// Everything is valid: apply.
	res := Applied{Changes: len(changes)}
	t, fresh := s.target(&h, len(changes))
	unix := now.Unix()
	for i := range changes {
		if !s.apply(t, &changes[i], unix, fresh) {
			res.Skipped++
		}
	}
	s.commit(t, &h, &res, unix)
	return res, nil
}

// applyBinary applies a page in protocol's binary form. A snapshot's first
// page is checked and applied in one pass into a new table, which a bad
// change discards; any other page is checked whole first.
func (s *State) applyBinary(data []byte, now int64) (Applied, error) {
	h, bin, err := parseBinaryHeader(data)
	if err != nil {
		return Applied{}, err
	}
	after, err := s.continues(&h)
	if err != nil {
		return Applied{}, err
	}
	res := Applied{Changes: bin.n}
	if h.reset {
		t := newTable(s.snapshotHint(&h, bin.n))
		prevLifts := s.pendingLifts
		s.pendingLifts = lifts{} // apply records the snapshot's lifts
		ri := s.internAll(bin.reasons)
		err := bin.walk(func(c *change) {
			c.ri = ri[c.ri]
			if !s.apply(t, c, now, true) {
				res.Skipped++
			}
		})
		if err == nil {
			err = checkCursor(&h, bin.n, bin.last)
		}
		if err != nil {
			s.pendingLifts = prevLifts
			return Applied{}, err
		}
		s.pending, s.pendingEpoch = t, strings.Clone(h.epoch)
		s.commit(t, &h, &res, now)
		return res, nil
	}
	if err := bin.walk(nil); err != nil {
		return Applied{}, err
	}
	if bin.n > 0 && bin.first <= after {
		// A binary page's seqs ascend by construction: only the first can
		// fail to pass the cursor.
		return Applied{}, &PageError{Index: 0, Msg: fmt.Sprintf("seq %d not above %d (seqs must ascend past the cursor)", bin.first, after)}
	}
	if err := checkCursor(&h, bin.n, bin.last); err != nil {
		return Applied{}, err
	}
	t, fresh := s.target(&h, bin.n)
	ri := s.internAll(bin.reasons)
	_ = bin.walk(func(c *change) { // cannot fail: the same data was just checked
		c.ri = ri[c.ri]
		if !s.apply(t, c, now, fresh) {
			res.Skipped++
		}
	})
	s.commit(t, &h, &res, now)
	return res, nil
}

// continues checks that a page continues what it applies to (a snapshot
// being built, else the live state) and returns the cursor its seqs must
// pass; a Reset page starts over at 0.
func (s *State) continues(h *pageHeader) (after int64, err error) {
	switch {
	case h.reset:
		return 0, nil
	case s.pending != nil:
		if h.epoch != s.pendingEpoch {
			return 0, ErrNeedSnapshot
		}
		after = s.pendingCursor
	default:
		if s.epoch == "" || h.epoch != s.epoch {
			return 0, ErrNeedSnapshot
		}
		after = s.cursor
	}
	if h.cursor < after {
		return 0, &PageError{Index: -1, Msg: fmt.Sprintf("cursor %d goes back from %d", h.cursor, after)}
	}
	return after, nil
}

func checkCursor(h *pageHeader, n int, last int64) error {
	if n > 0 && h.cursor < last {
		return &PageError{Index: -1, Msg: fmt.Sprintf("cursor %d below the last seq %d", h.cursor, last)}
	}
	return nil
}

// maxSizeHint bounds the table size a page's total may ask for.
const maxSizeHint = 1 << 20

// snapshotHint sizes a new snapshot's table: as the page says the whole
// snapshot holds; else about as big as the state it replaces, or bigger
// when more pages come (growing a table copies it).
func (s *State) snapshotHint(h *pageHeader, n int) int {
	if h.total > 0 {
		return max(n, int(min(h.total, maxSizeHint)))
	}
	hint := max(n, s.cur.revokedLen())
	if h.more {
		hint = max(hint, 4*n)
	}
	return hint
}

// target is the table a valid page goes to, and whether it is a snapshot
// (which holds each key once).
func (s *State) target(h *pageHeader, n int) (t *table, fresh bool) {
	switch {
	case h.reset:
		t = newTable(s.snapshotHint(h, n))
		s.pending, s.pendingEpoch, s.pendingLifts = t, strings.Clone(h.epoch), lifts{}
		return t, true
	case s.pending != nil:
		return s.pending, true
	}
	return s.cur, false
}

// commit records an applied page: a snapshot's last page swaps it in,
// keeping what the state it replaces holds and the snapshot lacks.
func (s *State) commit(t *table, h *pageHeader, res *Applied, now int64) {
	res.Epoch, res.Cursor, res.More, res.Reset, res.ServerNow = h.epoch, h.cursor, h.more, h.reset, h.now
	if t == s.pending {
		s.pendingCursor = h.cursor
		if !h.more {
			if s.epoch != "" {
				res.PrevEpoch = s.epoch
				res.Kept = s.pending.keepFrom(s.cur, &s.pendingLifts, now)
			}
			s.cur, s.epoch, s.cursor = s.pending, s.pendingEpoch, s.pendingCursor
			s.AbortSnapshot()
			s.version++
			res.Swapped = true
		}
		return
	}
	if res.Changes > 0 || h.cursor != s.cursor {
		s.cursor = h.cursor
		s.version++
	}
}

// internAll interns a page's reason list, returning each one's index.
func (s *State) internAll(reasons []string) []uint8 {
	ri := make([]uint8, len(reasons))
	for i, r := range reasons {
		ri[i] = s.intern(r)
	}
	return ri
}

// longer returns e with the later expiry of old and e (0 = never wins):
// re-revoking a key never shortens its protection.
func longer(old, e entry) entry {
	if old.exp() == 0 || (e.exp() != 0 && old.exp() > e.exp()) {
		return mkEntry(old.exp(), e.reason())
	}
	return e
}

// apply stores one validated change; false when it was expired and
// skipped. In a snapshot (fresh) each key comes once.
func (s *State) apply(t *table, c *change, now int64, fresh bool) bool {
	switch c.op {
	case opRevoke:
		h := c.hash
		if h == 0 {
			h = protocol.KeyHash(c.key)
		}
		if !live(c.exp, now) {
			t.revoked.del(h)
			return false
		}
		e := mkEntry(c.exp, s.reasonOf(c))
		if !fresh {
			if old, ok := t.revoked.get(h); ok {
				e = longer(old, e)
			}
		}
		t.revoked.put(h, e)
	case opUnrevoke:
		h := c.hash
		if h == 0 {
			h = protocol.KeyHash(c.key)
		}
		t.revoked.del(h)
		if fresh {
			s.pendingLifts.keys.put(h, 0)
		}
	case opBlock:
		h := UserHash(c.key)
		if !live(c.exp, now) {
			t.blocked.del(h)
			return false
		}
		t.blocked.put(h, mkEntry(c.exp, s.reasonOf(c)))
	case opUnblock:
		h := UserHash(c.key)
		t.blocked.del(h)
		if fresh {
			s.pendingLifts.users.put(h, 0)
		}
	case opNotBefore:
		if !live(c.exp, now) {
			return false
		}
		h := UserHash(c.key)
		e := nbEntry{at: c.at, exp: c.exp}
		if old, ok := t.notBefore.get(h); ok {
			e.at = max(e.at, old.at)
			if old.exp == 0 || (e.exp != 0 && old.exp > e.exp) {
				e.exp = old.exp
			}
		}
		t.notBefore.put(h, e)
	}
	return true
}

// parsePage parses and validates a page body in one pass.
func parsePage(js string) (pageHeader, []change, error) {
	var h pageHeader
	p := jsonscan.New(js)
	if p.Peek() != '{' {
		if !jsonscan.Valid(js) {
			return h, nil, &PageError{Index: -1, Msg: "not valid JSON"}
		}
		return h, nil, &PageError{Index: -1, Msg: "not a JSON object"}
	}
	// Size the list once: every change is an object (nested objects only
	// make this an overestimate). Counting one byte is fast.
	changes := make([]change, 0, min(strings.Count(js, "{")-1, 1<<20))
	var seen uint8
	var perr error // a semantic error; syntax errors make Object return false
	ok := p.Object(1, func(name string, esc bool) bool {
		if esc {
			name = jsonscan.Unescape(name)
		}
		var bit uint8
		switch name {
		case "epoch":
			bit = 1
		case "cursor":
			bit = 2
		case "more":
			bit = 4
		case "reset":
			bit = 8
		case "now":
			bit = 16
		case "changes":
			bit = 32
		case "total":
			bit = 64
		}
		if bit != 0 && perr == nil {
			if seen&bit != 0 {
				perr = fmt.Errorf("duplicate field %q", name)
			}
			seen |= bit
		}
		if name != "changes" || perr != nil {
			kind, text, vesc, ok := p.Value(1)
			if !ok {
				return false
			}
			if perr != nil {
				return true
			}
			var err error
			switch name {
			case "epoch":
				h.epoch, err = stringValue(kind, text, vesc, "epoch")
				if err == nil && (h.epoch == "" || len(h.epoch) > MaxKeyLen) {
					err = errors.New(`"epoch" must be a non-empty string`)
				}
			case "cursor":
				h.cursor, err = integer(kind, text, "cursor")
			case "more":
				h.more, err = boolean(kind, "more")
			case "reset":
				h.reset, err = boolean(kind, "reset")
			case "now":
				h.now, err = integer(kind, text, "now")
			case "total":
				h.total, err = integer(kind, text, "total")
			}
			perr = err
			return true
		}
		// "changes"
		switch p.Peek() {
		case 'n':
			_, _, _, ok := p.Value(1)
			return ok
		case '[':
		default:
			_, _, _, ok := p.Value(1)
			perr = errors.New(`"changes" must be an array`)
			return ok
		}
		return p.Array(2, func() bool {
			if perr != nil {
				_, _, _, ok := p.Value(2)
				return ok
			}
			var c change
			if n, fast, err := fastChange(p.Rest(), &c); fast {
				p.Advance(n)
				if err != nil {
					perr = &PageError{Index: len(changes), Msg: err.Error()}
				} else {
					changes = append(changes, c)
				}
				return true
			}
			c = change{}
			ok, err := parseChange(&p, &c)
			if err != nil {
				perr = &PageError{Index: len(changes), Msg: err.Error()}
			} else {
				changes = append(changes, c)
			}
			return ok
		})
	})
	if !ok || !p.End() {
		return h, nil, &PageError{Index: -1, Msg: "not valid JSON"}
	}
	if perr != nil {
		if pe, ok := perr.(*PageError); ok {
			return h, nil, pe
		}
		return h, nil, &PageError{Index: -1, Msg: perr.Error()}
	}
	if seen&1 == 0 {
		return h, nil, &PageError{Index: -1, Msg: `missing "epoch"`}
	}
	if seen&2 == 0 {
		return h, nil, &PageError{Index: -1, Msg: `missing "cursor"`}
	}
	return h, changes, nil
}

// parseChange reads one change. ok is false on a syntax error; err reports
// an invalid change in valid JSON.
func parseChange(p *jsonscan.Scanner, c *change) (ok bool, err error) {
	if p.Peek() != '{' {
		_, _, _, ok := p.Value(2)
		return ok, errors.New("must be an object")
	}
	var opName, key, user string
	var hasSeq bool
	var seen uint8
	ok = p.Object(3, func(name string, esc bool) bool {
		kind, text, vesc, ok := p.Value(3)
		if !ok {
			return false
		}
		if err != nil {
			return true
		}
		if esc {
			name = jsonscan.Unescape(name)
		}
		var bit uint8
		switch name {
		case "seq":
			bit = 1
		case "op":
			bit = 2
		case "key":
			bit = 4
		case "user":
			bit = 8
		case "exp":
			bit = 16
		case "at":
			bit = 32
		case "reason":
			bit = 64
		default:
			return true
		}
		if seen&bit != 0 {
			err = fmt.Errorf("duplicate field %q", name)
			return true
		}
		seen |= bit
		switch name {
		case "seq":
			c.seq, err = integer(kind, text, "seq")
			hasSeq = true
		case "op":
			opName, err = stringValue(kind, text, vesc, "op")
		case "key":
			key, err = stringValue(kind, text, vesc, "key")
		case "user":
			if kind == jsonscan.Number && isInt(text) {
				user = text // tolerate numeric user ids
			} else {
				user, err = stringValue(kind, text, vesc, "user")
			}
		case "exp":
			c.exp, err = integer(kind, text, "exp")
		case "at":
			c.at, err = integer(kind, text, "at")
		case "reason":
			c.reason, err = stringValue(kind, text, vesc, "reason")
		}
		return true
	})
	if !ok || err != nil {
		return ok, err
	}
	return true, validateChange(c, opName, key, user, hasSeq)
}

// fastChange reads one change written exactly as Go's encoding/json writes
// protocol.Change: no whitespace, fields in declaration order, plain
// strings (no escapes or control characters) and unsigned integers. fast is
// false when s does not have that shape (the general parser then reads
// it); what it accepts is always valid JSON. n is the length read.
func fastChange(s string, c *change) (n int, fast bool, err error) {
	var opName, key, user string
	i, ok := lit(s, 0, `{"seq":`)
	if !ok {
		return 0, false, nil
	}
	if c.seq, i, ok = digits(s, i); !ok {
		return 0, false, nil
	}
	if j, ok := lit(s, i, `,"op":"`); ok {
		if opName, i, ok = plain(s, j); !ok {
			return 0, false, nil
		}
	}
	if j, ok := lit(s, i, `,"key":"`); ok {
		if key, i, ok = plain(s, j); !ok {
			return 0, false, nil
		}
	}
	if j, ok := lit(s, i, `,"user":"`); ok {
		if user, i, ok = plain(s, j); !ok {
			return 0, false, nil
		}
	}
	if j, ok := lit(s, i, `,"exp":`); ok {
		if c.exp, i, ok = digits(s, j); !ok {
			return 0, false, nil
		}
	}
	if j, ok := lit(s, i, `,"at":`); ok {
		if c.at, i, ok = digits(s, j); !ok {
			return 0, false, nil
		}
	}
	if j, ok := lit(s, i, `,"reason":"`); ok {
		if c.reason, i, ok = plain(s, j); !ok {
			return 0, false, nil
		}
	}
	if i >= len(s) || s[i] != '}' {
		return 0, false, nil
	}
	return i + 1, true, validateChange(c, opName, key, user, true)
}

// lit matches l at s[i:]. (A byte loop: string == compiles to memequal,
// which on wasm is a slow out-of-line byte loop.)
func lit(s string, i int, l string) (int, bool) {
	if len(s)-i < len(l) {
		return i, false
	}
	for k := 0; k < len(l); k++ {
		if s[i+k] != l[k] {
			return i, false
		}
	}
	return i + len(l), true
}

// digits reads an unsigned integer without leading zeros (at most 18
// digits) at s[i:].
func digits(s string, i int) (int64, int, bool) {
	start := i
	var v int64
	for ; i < len(s) && i-start < 19; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	n := i - start
	if n == 0 || n > 18 || (n > 1 && s[start] == '0') {
		return 0, i, false
	}
	return v, i, true
}

// plain reads the rest of a string without escapes or control characters
// at s[i:] (after the opening quote) and returns it and the index after the
// closing quote.
func plain(s string, i int) (string, int, bool) {
	start := i
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return s[start:i], i + 1, true
		}
		if c == '\\' || c < 0x20 {
			return "", i, false
		}
	}
	return "", i, false
}

func validateChange(c *change, opName, key, user string, hasSeq bool) error {
	if !hasSeq || c.seq == 0 {
		return errors.New(`"seq" must be a positive integer`)
	}
	if len(c.reason) > MaxReasonLen {
		return fmt.Errorf(`"reason" longer than %d bytes`, MaxReasonLen)
	}
	switch opName {
	case protocol.OpRevoke, protocol.OpUnrevoke:
		if opName == protocol.OpRevoke {
			c.op = opRevoke
		} else {
			c.op = opUnrevoke
		}
		if !strings.HasPrefix(key, protocol.PrefixSession) && !strings.HasPrefix(key, protocol.PrefixFingerprint) {
			return fmt.Errorf(`op %q needs "key" starting with "sid:" or "fp:", got %q`, opName, clip(key))
		}
		if key == protocol.PrefixSession || key == protocol.PrefixFingerprint {
			return fmt.Errorf(`op %q: empty key value`, opName)
		}
		if len(key) > MaxKeyLen {
			return fmt.Errorf(`"key" longer than %d bytes`, MaxKeyLen)
		}
		c.key = key
	case protocol.OpBlock, protocol.OpUnblock, protocol.OpNotBefore:
		switch opName {
		case protocol.OpBlock:
			c.op = opBlock
		case protocol.OpUnblock:
			c.op = opUnblock
		default:
			c.op = opNotBefore
		}
		// The user may come as "user" (bare or "user:<id>") or as "key" "user:<id>".
		if user == "" && strings.HasPrefix(key, protocol.PrefixUser) {
			user = key
		}
		user = strings.TrimPrefix(user, protocol.PrefixUser)
		if user == "" {
			return fmt.Errorf(`op %q needs "user"`, opName)
		}
		if len(user) > MaxKeyLen {
			return fmt.Errorf(`"user" longer than %d bytes`, MaxKeyLen)
		}
		c.key = user
		if c.op == opNotBefore && c.at == 0 {
			return errors.New(`op "not_before" needs "at"`)
		}
	case "":
		return errors.New(`missing "op"`)
	default:
		return fmt.Errorf("unknown op %q", clip(opName))
	}
	return nil
}

func stringValue(kind jsonscan.Kind, text string, esc bool, name string) (string, error) {
	if kind != jsonscan.String {
		return "", fmt.Errorf("%q must be a string", name)
	}
	if esc {
		return jsonscan.Unescape(text), nil
	}
	return text, nil
}

// integer reads a non-negative integer.
func integer(kind jsonscan.Kind, text, name string) (int64, error) {
	if kind != jsonscan.Number {
		return 0, fmt.Errorf("%q must be an integer", name)
	}
	if text == "" || len(text) > 18 {
		return 0, fmt.Errorf("%q must be a non-negative integer, got %s", name, clip(text))
	}
	var n int64
	for k := 0; k < len(text); k++ {
		c := text[k]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q must be a non-negative integer, got %s", name, clip(text))
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func boolean(kind jsonscan.Kind, name string) (bool, error) {
	if kind != jsonscan.True && kind != jsonscan.False {
		return false, fmt.Errorf("%q must be true or false", name)
	}
	return kind == jsonscan.True, nil
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
