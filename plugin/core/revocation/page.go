package revocation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

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
	exp    int64
	at     int64
	reason string
}

type pageHeader struct {
	epoch  string
	cursor int64
	more   bool
	reset  bool
	now    int64
	list   gjson.Result
}

// ApplyPage applies one sync page (protocol.SyncPage JSON) at now.
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
	// The body is only read while applying; stored strings are cloned.
	js := ""
	if len(data) > 0 {
		js = unsafe.String(&data[0], len(data))
	}
	h, err := parseHeader(js)
	if err != nil {
		return Applied{}, err
	}
	res := Applied{Epoch: h.epoch, Cursor: h.cursor, More: h.more, Reset: h.reset, ServerNow: h.now}

	// Where the page goes, and the cursor its seqs must exceed.
	var after int64
	switch {
	case h.reset:
		after = 0
	case s.pending != nil:
		if h.epoch != s.pendingEpoch {
			return Applied{}, ErrNeedSnapshot
		}
		after = s.pendingCursor
	default:
		if s.epoch == "" || h.epoch != s.epoch {
			return Applied{}, ErrNeedSnapshot
		}
		after = s.cursor
	}
	if !h.reset && h.cursor < after {
		return Applied{}, &PageError{Index: -1, Msg: fmt.Sprintf("cursor %d goes back from %d", h.cursor, after)}
	}

	// Pass 1: validate everything, change nothing.
	last := after
	n := 0
	err = forEachChange(h.list, func(i int, c *change) error {
		if c.seq <= last {
			return &PageError{Index: i, Msg: fmt.Sprintf("seq %d not above %d (seqs must ascend past the cursor)", c.seq, last)}
		}
		last = c.seq
		n++
		return nil
	})
	if err != nil {
		return Applied{}, err
	}
	if n > 0 && h.cursor < last {
		return Applied{}, &PageError{Index: -1, Msg: fmt.Sprintf("cursor %d below the last seq %d", h.cursor, last)}
	}
	res.Changes = n

	// Pass 2: apply (cannot fail: the same parse succeeded above).
	var t *table
	switch {
	case h.reset:
		t = newTable(n)
		s.pending, s.pendingEpoch = t, strings.Clone(h.epoch)
	case s.pending != nil:
		t = s.pending
	default:
		t = s.cur
	}
	unix := now.Unix()
	_ = forEachChange(h.list, func(_ int, c *change) error {
		if !s.apply(t, c, unix) {
			res.Skipped++
		}
		return nil
	})

	if t == s.pending {
		s.pendingCursor = h.cursor
		if !h.more {
			s.cur, s.epoch, s.cursor = s.pending, s.pendingEpoch, s.pendingCursor
			s.AbortSnapshot()
			s.version++
			res.Swapped = true
		}
		return res, nil
	}
	if n > 0 || h.cursor != s.cursor {
		s.cursor = h.cursor
		s.version++
	}
	return res, nil
}

// apply stores one validated change; false when it was expired and skipped.
func (s *State) apply(t *table, c *change, now int64) bool {
	switch c.op {
	case opRevoke:
		if !live(c.exp, now) {
			delete(t.revoked, c.key)
			return false
		}
		e := entry{exp: c.exp, reason: s.intern(c.reason)}
		if old, ok := t.revoked[c.key]; ok && (old.exp == 0 || (e.exp != 0 && old.exp > e.exp)) {
			e.exp = old.exp // keep the longest protection
		}
		t.revoked[strings.Clone(c.key)] = e
	case opUnrevoke:
		delete(t.revoked, c.key)
	case opBlock:
		if !live(c.exp, now) {
			delete(t.blocked, c.key)
			return false
		}
		t.blocked[strings.Clone(c.key)] = entry{exp: c.exp, reason: s.intern(c.reason)}
	case opUnblock:
		delete(t.blocked, c.key)
	case opNotBefore:
		if !live(c.exp, now) {
			return false
		}
		e := nbEntry{at: c.at, exp: c.exp}
		if old, ok := t.notBefore[c.key]; ok {
			e.at = max(e.at, old.at)
			if old.exp == 0 || (e.exp != 0 && old.exp > e.exp) {
				e.exp = old.exp
			}
		}
		t.notBefore[strings.Clone(c.key)] = e
	}
	return true
}

func parseHeader(js string) (pageHeader, error) {
	var h pageHeader
	if !gjson.Valid(js) {
		return h, &PageError{Index: -1, Msg: "not valid JSON"}
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return h, &PageError{Index: -1, Msg: "not a JSON object"}
	}
	var err error
	var seen uint8
	root.ForEach(func(k, v gjson.Result) bool {
		var bit uint8
		switch k.Str {
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
		default:
			return true // unknown fields are ignored (forward compatibility)
		}
		if seen&bit != 0 {
			err = &PageError{Index: -1, Msg: fmt.Sprintf("duplicate field %q", k.Str)}
			return false
		}
		seen |= bit
		switch k.Str {
		case "epoch":
			if v.Type != gjson.String || v.Str == "" || len(v.Str) > MaxKeyLen {
				err = &PageError{Index: -1, Msg: `"epoch" must be a non-empty string`}
			}
			h.epoch = v.Str
		case "cursor":
			h.cursor, err = nonNegInt(v, "cursor")
		case "more":
			h.more, err = boolean(v, "more")
		case "reset":
			h.reset, err = boolean(v, "reset")
		case "now":
			h.now, err = nonNegInt(v, "now")
		case "changes":
			if v.Type != gjson.Null && !v.IsArray() {
				err = &PageError{Index: -1, Msg: `"changes" must be an array`}
			}
			h.list = v
		}
		if err != nil {
			if _, ok := err.(*PageError); !ok {
				err = &PageError{Index: -1, Msg: err.Error()}
			}
		}
		return err == nil
	})
	if err != nil {
		return h, err
	}
	if seen&1 == 0 {
		return h, &PageError{Index: -1, Msg: `missing "epoch"`}
	}
	if seen&2 == 0 {
		return h, &PageError{Index: -1, Msg: `missing "cursor"`}
	}
	return h, nil
}

func nonNegInt(v gjson.Result, name string) (int64, error) {
	if v.Type != gjson.Number {
		return 0, fmt.Errorf("%q must be an integer", name)
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q must be a non-negative integer, got %s", name, v.Raw)
	}
	return n, nil
}

func boolean(v gjson.Result, name string) (bool, error) {
	if v.Type != gjson.True && v.Type != gjson.False {
		return false, fmt.Errorf("%q must be true or false", name)
	}
	return v.Type == gjson.True, nil
}

// forEachChange parses and validates each change of list and calls fn.
func forEachChange(list gjson.Result, fn func(i int, c *change) error) error {
	if !list.IsArray() {
		return nil
	}
	var err error
	i := 0
	var c change
	list.ForEach(func(_, v gjson.Result) bool {
		c = change{}
		if err = parseChange(v, &c); err != nil {
			err = &PageError{Index: i, Msg: err.Error()}
			return false
		}
		if err = fn(i, &c); err != nil {
			return false
		}
		i++
		return true
	})
	return err
}

func parseChange(v gjson.Result, c *change) error {
	if !v.IsObject() {
		return errors.New("must be an object")
	}
	var err error
	var opName, key, user string
	var hasSeq bool
	var seen uint8
	v.ForEach(func(k, f gjson.Result) bool {
		var bit uint8
		switch k.Str {
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
			err = fmt.Errorf("duplicate field %q", k.Str)
			return false
		}
		seen |= bit
		switch k.Str {
		case "seq":
			c.seq, err = nonNegInt(f, "seq")
			hasSeq = true
		case "op":
			opName, err = str(f, "op")
		case "key":
			key, err = str(f, "key")
		case "user":
			if f.Type == gjson.Number && isInt(f.Raw) {
				user = f.Raw // tolerate numeric user ids
			} else {
				user, err = str(f, "user")
			}
		case "exp":
			c.exp, err = nonNegInt(f, "exp")
		case "at":
			c.at, err = nonNegInt(f, "at")
		case "reason":
			c.reason, err = str(f, "reason")
		}
		return err == nil
	})
	if err != nil {
		return err
	}
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

func str(v gjson.Result, name string) (string, error) {
	if v.Type != gjson.String {
		return "", fmt.Errorf("%q must be a string", name)
	}
	return v.Str, nil
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
