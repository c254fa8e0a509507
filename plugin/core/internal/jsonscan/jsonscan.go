// Package jsonscan is a small validating JSON scanner that reads a document
// in one pass without building values: callers walk objects and arrays
// with callbacks and get strings and numbers as substrings of the input.
// It accepts exactly the JSON that gjson.Valid accepts (fuzzed against it),
// with nesting limited to MaxDepth. It does not check UTF-8.
package jsonscan

import "github.com/tidwall/gjson"

// MaxDepth bounds nesting.
const MaxDepth = 64

// Kind is the kind of a value.
type Kind byte

// Kinds.
const (
	Invalid Kind = iota
	String
	Number
	Object
	Array
	True
	False
	Null
)

// Scanner reads one JSON text. Methods return ok=false on the first syntax
// error; the scanner is then unusable.
type Scanner struct {
	s string
	i int
}

// New returns a scanner over s.
func New(s string) Scanner { return Scanner{s: s} }

// WS skips whitespace.
func (p *Scanner) WS() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// Peek skips whitespace and returns the next byte (0 at the end).
func (p *Scanner) Peek() byte {
	p.WS()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// End reports whether only whitespace remains.
func (p *Scanner) End() bool {
	p.WS()
	return p.i == len(p.s)
}

// Str reads a string (the next byte must be '"') and returns its raw
// content and whether it has escapes (see Unescape).
func (p *Scanner) Str() (content string, esc bool, ok bool) {
	p.WS()
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false, false
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		c := p.s[j]
		switch {
		case c == '"':
			p.i = j + 1
			return p.s[start:j], esc, true
		case c < 0x20:
			return "", false, false
		case c == '\\':
			esc = true
			j++
			if j >= len(p.s) {
				return "", false, false
			}
			switch p.s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(p.s) {
					return "", false, false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(p.s[k]) {
						return "", false, false
					}
				}
				j += 4
			default:
				return "", false, false
			}
		}
	}
	return "", false, false
}

// Unescape decodes the raw content of a string that has escapes.
func Unescape(raw string) string { return gjson.Parse(`"` + raw + `"`).Str }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *Scanner) number() (string, bool) {
	s, i := p.s, p.i
	start := i
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return "", false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	} else {
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return "", false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return "", false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	p.i = i
	return s[start:i], true
}

func (p *Scanner) literal(lit string) bool {
	if len(p.s)-p.i >= len(lit) && p.s[p.i:p.i+len(lit)] == lit {
		p.i += len(lit)
		return true
	}
	return false
}

// Value validates and consumes one value at depth (1 for members of the
// top-level object). For strings it returns the raw content and whether it
// has escapes; for numbers their text; for other kinds text is "".
func (p *Scanner) Value(depth int) (kind Kind, text string, esc bool, ok bool) {
	switch c := p.Peek(); {
	case c == '"':
		t, e, ok := p.Str()
		return String, t, e, ok
	case c == '-' || isDigit(c):
		t, ok := p.number()
		return Number, t, false, ok
	case c == '{':
		return Object, "", false, p.Object(depth+1, nil)
	case c == '[':
		return Array, "", false, p.Array(depth+1, nil)
	case c == 't':
		return True, "", false, p.literal("true")
	case c == 'f':
		return False, "", false, p.literal("false")
	case c == 'n':
		return Null, "", false, p.literal("null")
	}
	return Invalid, "", false, false
}

// Object consumes an object. member, when not nil, is called after each
// member's name and must consume the value (e.g. with Value) and return
// false on error; when nil, values are validated and skipped.
func (p *Scanner) Object(depth int, member func(name string, esc bool) bool) bool {
	return p.items(depth, '{', '}', func() bool {
		name, esc, named := p.Str()
		if !named || p.Peek() != ':' {
			return false
		}
		p.i++
		if member != nil {
			return member(name, esc)
		}
		_, _, _, ok := p.Value(depth)
		return ok
	})
}

// Array consumes an array. elem, when not nil, is called for each element
// and must consume it and return false on error; when nil, elements are
// validated and skipped.
func (p *Scanner) Array(depth int, elem func() bool) bool {
	if elem == nil {
		elem = func() bool {
			_, _, _, ok := p.Value(depth)
			return ok
		}
	}
	return p.items(depth, '[', ']', elem)
}

// items consumes an object or an array, calling item to consume each of
// its members or elements.
func (p *Scanner) items(depth int, opening, closing byte, item func() bool) bool {
	more, ok := p.open(depth, opening, closing)
	for more {
		if !item() {
			return false
		}
		if more, ok = p.next(closing); !ok {
			return false
		}
	}
	return ok
}

// open consumes the opening byte of an object or array (and its closing
// one when it is empty): more tells whether an item follows.
func (p *Scanner) open(depth int, opening, closing byte) (more, ok bool) {
	if depth > MaxDepth || p.Peek() != opening {
		return false, false
	}
	p.i++
	if p.Peek() == closing {
		p.i++
		return false, true
	}
	return true, true
}

// next consumes what follows an item of an object or array: a comma
// (more follows) or the closing byte.
func (p *Scanner) next(closing byte) (more, ok bool) {
	switch p.Peek() {
	case ',':
		p.i++
		return true, true
	case closing:
		p.i++
		return false, true
	}
	return false, false
}

// Rest returns the unread input (after skipping whitespace), for callers
// with a faster path for a known shape; Advance then skips what they read.
func (p *Scanner) Rest() string {
	p.WS()
	return p.s[p.i:]
}

// Advance skips n bytes of the unread input. The caller must have checked
// that they form a valid JSON value.
func (p *Scanner) Advance(n int) { p.i = min(p.i+n, len(p.s)) }

// Valid reports whether s is one valid JSON value (with nesting at most
// MaxDepth) surrounded by optional whitespace.
func Valid(s string) bool {
	p := New(s)
	if _, _, _, ok := p.Value(0); !ok {
		return false
	}
	return p.End()
}
