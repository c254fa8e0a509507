package revocation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// binPage is a sync page in protocol's binary form: its header read, its
// changes still encoded. walk decodes and checks them; a 100,000-change
// snapshot never exists as a slice.
type binPage struct {
	reasons []string // views into the page
	body    []byte   // the encoded changes
	n       int      // their count
	first   int64    // set by walk: the first change's seq (0 when none)
	last    int64    // set by walk: the last change's seq
}

func isBinaryPage(data []byte) bool {
	return len(data) >= len(protocol.BinaryPageMagic) && string(data[:len(protocol.BinaryPageMagic)]) == protocol.BinaryPageMagic
}

// binReader reads the binary page; the first error sticks.
type binReader struct {
	b   []byte
	off int
	err error
}

func (r *binReader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
}

func (r *binReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad " + what)
		return 0
	}
	r.off += n
	return v
}

// int reads a uvarint that must fit a non-negative int64 below 2⁶².
func (r *binReader) int(what string) int64 {
	v := r.uvarint(what)
	if v >= 1<<62 {
		r.fail(what + " out of range")
		return 0
	}
	return int64(v)
}

func (r *binReader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated at " + what)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// str returns the next string as a view into the page.
func (r *binReader) str(what string, maxLen int) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(maxLen) {
		r.fail(fmt.Sprintf("%s longer than %d bytes", what, maxLen))
		return ""
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("truncated at " + what)
		return ""
	}
	if n == 0 {
		return ""
	}
	s := unsafe.String(&r.b[r.off], int(n))
	r.off += int(n)
	return s
}

// change decodes one change after the one with seq prev and checks it as
// the JSON parser does. c.ri is the reason's index in the page.
func (r *binReader) change(nReasons int, prev int64, c *change) error {
	code := r.byte("op")
	step := r.int("seq")
	c.hash, c.key, c.at, c.binary = 0, "", 0, true
	switch code {
	case protocol.BinOpRevoke, protocol.BinOpUnrevoke:
		if r.err == nil && len(r.b)-r.off < 8 {
			r.fail("truncated at key hash")
		}
		if r.err == nil {
			c.hash = binary.LittleEndian.Uint64(r.b[r.off:])
			r.off += 8
		}
	case protocol.BinOpBlock, protocol.BinOpUnblock, protocol.BinOpNotBefore:
		c.key = r.str("user", MaxKeyLen)
	default:
		if r.err == nil {
			return fmt.Errorf("unknown op code %d", code)
		}
	}
	c.exp = r.int("exp")
	if code == protocol.BinOpNotBefore {
		c.at = r.int("at")
	}
	c.ri = r.byte("reason")
	if r.err != nil {
		return r.err
	}
	if step == 0 {
		return errors.New("seq step 0 (seqs must ascend)")
	}
	c.seq = prev + step
	if c.seq < prev {
		return errors.New("seq out of range")
	}
	if int(c.ri) >= nReasons {
		return fmt.Errorf("reason index %d past the %d reasons", c.ri, nReasons)
	}
	switch code {
	case protocol.BinOpRevoke:
		c.op = opRevoke
	case protocol.BinOpUnrevoke:
		c.op = opUnrevoke
	case protocol.BinOpBlock:
		c.op = opBlock
	case protocol.BinOpUnblock:
		c.op = opUnblock
	case protocol.BinOpNotBefore:
		c.op = opNotBefore
		if c.at == 0 {
			return errors.New(`op "not_before" needs "at"`)
		}
	}
	if c.op <= opUnrevoke && c.hash == 0 {
		return errors.New("key hash 0")
	}
	if c.op > opUnrevoke && c.key == "" {
		return fmt.Errorf("op %q needs a user", protocol.BinaryOpName(code))
	}
	return nil
}

// parseBinaryHeader reads a page's header and reason list.
func parseBinaryHeader(data []byte) (pageHeader, *binPage, error) {
	var h pageHeader
	r := &binReader{b: data, off: len(protocol.BinaryPageMagic)}
	bad := func(msg string) (pageHeader, *binPage, error) {
		return h, nil, &PageError{Index: -1, Msg: "binary page: " + msg}
	}
	if f := r.byte("format"); r.err == nil && f != protocol.BinaryPageFormat {
		return bad(fmt.Sprintf("unknown format %d", f))
	}
	flags := r.byte("flags")
	if flags&^(protocol.BinFlagMore|protocol.BinFlagReset) != 0 {
		r.fail(fmt.Sprintf("unknown flags %#x", flags))
	}
	h.more, h.reset = flags&protocol.BinFlagMore != 0, flags&protocol.BinFlagReset != 0
	h.epoch = r.str("epoch", MaxKeyLen)
	h.cursor = r.int("cursor")
	h.now = r.int("now")
	h.total = r.int("total")
	nr := r.uvarint("reason count")
	if r.err == nil && nr > protocol.MaxBinaryReasons {
		r.fail("too many reasons")
	}
	p := &binPage{}
	if r.err == nil {
		p.reasons = make([]string, nr)
	}
	for i := range p.reasons {
		p.reasons[i] = r.str("reason", MaxReasonLen)
	}
	n := r.uvarint("change count")
	if r.err == nil && n > uint64(len(data)-r.off)/4 { // a change takes at least 4 bytes
		r.fail("change count larger than the page")
	}
	if r.err != nil {
		return bad(r.err.Error())
	}
	if h.epoch == "" {
		return bad(`empty "epoch"`)
	}
	p.n, p.body = int(n), data[r.off:]
	return h, p, nil
}

// walk decodes and checks every change in order, handing each to fn (when
// not nil), and sets first and last. It stops at the first bad change.
// fn may change c.
func (p *binPage) walk(fn func(c *change)) error {
	r := &binReader{b: p.body}
	var c change
	var prev int64
	for i := 0; i < p.n; i++ {
		if err := r.change(len(p.reasons), prev, &c); err != nil {
			return &PageError{Index: i, Msg: err.Error()}
		}
		if i == 0 {
			p.first = c.seq
		}
		prev = c.seq
		if fn != nil {
			fn(&c)
		}
	}
	p.last = prev
	if r.off != len(r.b) {
		return &PageError{Index: -1, Msg: "binary page: trailing bytes after the last change"}
	}
	return nil
}
