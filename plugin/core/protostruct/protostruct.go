// Package protostruct converts a serialised google.protobuf.Struct (what
// Envoy hands a Wasm filter for a dynamic-metadata property such as
// jwt_authn's payload_in_metadata) to JSON text, so that the claims reader
// can treat it like a JWT payload. It decodes the protobuf wire format by
// hand (no protobuf runtime in the Wasm module) and never panics on
// malformed input.
package protostruct

import (
	"errors"
	"math"
	"strconv"

	"github.com/tidwall/gjson"
)

// Limits.
const (
	MaxDepth = 32
	MaxSize  = 1 << 20
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("protostruct: malformed google.protobuf.Struct")

// ToJSON converts a serialised Struct to a JSON object. Input that already
// is a JSON object (starts with '{') is returned as is, so the glue can pass
// whatever the host gave it. Numbers are doubles in a Struct: integral
// values print without a fraction ("42", "1700000000").
func ToJSON(b []byte) (string, error) {
	if len(b) > MaxSize {
		return "", ErrMalformed
	}
	if len(b) > 0 && b[0] == '{' {
		if !gjson.ValidBytes(b) {
			return "", ErrMalformed
		}
		return string(b), nil
	}
	out, err := appendStruct(make([]byte, 0, len(b)+len(b)/2+2), b, 0)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// field reads one field: number, wire type, and for wire type 2 its bytes,
// for wire type 1 its 8 bytes, for 0 its varint value (in v).
func field(b []byte) (num int, wt int, data []byte, v uint64, n int, err error) {
	key, k := varint(b)
	if k == 0 {
		return 0, 0, nil, 0, 0, ErrMalformed
	}
	num, wt = int(key>>3), int(key&7)
	if num == 0 {
		return 0, 0, nil, 0, 0, ErrMalformed
	}
	rest := b[k:]
	switch wt {
	case 0:
		val, m := varint(rest)
		if m == 0 {
			return 0, 0, nil, 0, 0, ErrMalformed
		}
		return num, wt, nil, val, k + m, nil
	case 1:
		if len(rest) < 8 {
			return 0, 0, nil, 0, 0, ErrMalformed
		}
		return num, wt, rest[:8], 0, k + 8, nil
	case 2:
		l, m := varint(rest)
		if m == 0 || l > uint64(len(rest)-m) {
			return 0, 0, nil, 0, 0, ErrMalformed
		}
		return num, wt, rest[m : m+int(l)], 0, k + m + int(l), nil
	case 5:
		if len(rest) < 4 {
			return 0, 0, nil, 0, 0, ErrMalformed
		}
		return num, wt, rest[:4], 0, k + 4, nil
	}
	return 0, 0, nil, 0, 0, ErrMalformed
}

// fields walks the fields of one message, as bufio.Scanner walks lines:
// next reads the following field into num, wt, data and v, and is false at
// the end or on malformed input (then err says why).
type fields struct {
	rest    []byte
	num, wt int
	data    []byte
	v       uint64
	err     error
}

func (f *fields) next() bool {
	if len(f.rest) == 0 || f.err != nil {
		return false
	}
	num, wt, data, v, n, err := field(f.rest)
	if err != nil {
		f.err = err
		return false
	}
	f.rest = f.rest[n:]
	f.num, f.wt, f.data, f.v = num, wt, data, v
	return true
}

// appendStruct: message Struct { map<string, Value> fields = 1; }
// (each map entry: message { string key = 1; Value value = 2; }).
func appendStruct(dst, b []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, ErrMalformed
	}
	dst = append(dst, '{')
	first := true
	entries := fields{rest: b}
	for entries.next() {
		if entries.num != 1 || entries.wt != 2 {
			continue // unknown field: skip
		}
		var key string
		var val []byte
		hasVal := false
		entry := fields{rest: entries.data}
		for entry.next() {
			switch {
			case entry.num == 1 && entry.wt == 2:
				key = string(entry.data)
			case entry.num == 2 && entry.wt == 2:
				val, hasVal = entry.data, true
			}
		}
		if entry.err != nil {
			return nil, entry.err
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = gjson.AppendJSONString(dst, key)
		dst = append(dst, ':')
		if !hasVal {
			dst = append(dst, "null"...)
			continue
		}
		var err error
		if dst, err = appendValue(dst, val, depth+1); err != nil {
			return nil, err
		}
	}
	if entries.err != nil {
		return nil, entries.err
	}
	return append(dst, '}'), nil
}

// appendValue: message Value { oneof kind { NullValue null_value = 1;
// double number_value = 2; string string_value = 3; bool bool_value = 4;
// Struct struct_value = 5; ListValue list_value = 6; } }. The last kind
// present wins, as in protobuf.
func appendValue(dst, b []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, ErrMalformed
	}
	var kind fields // the last kind present
	all := fields{rest: b}
	for all.next() {
		if all.num >= 1 && all.num <= 6 {
			kind = all
		}
	}
	if all.err != nil {
		return nil, all.err
	}
	kdata, kv := kind.data, kind.v
	switch {
	case kind.num == 0 || kind.num == 1:
		return append(dst, "null"...), nil
	case kind.num == 2 && kind.wt == 1:
		f := math.Float64frombits(uint64(kdata[0]) | uint64(kdata[1])<<8 | uint64(kdata[2])<<16 | uint64(kdata[3])<<24 |
			uint64(kdata[4])<<32 | uint64(kdata[5])<<40 | uint64(kdata[6])<<48 | uint64(kdata[7])<<56)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e18 {
			return strconv.AppendInt(dst, int64(f), 10), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case kind.num == 3 && kind.wt == 2:
		return gjson.AppendJSONString(dst, string(kdata)), nil
	case kind.num == 4 && kind.wt == 0:
		if kv != 0 {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case kind.num == 5 && kind.wt == 2:
		return appendStruct(dst, kdata, depth+1)
	case kind.num == 6 && kind.wt == 2:
		// message ListValue { repeated Value values = 1; }
		dst = append(dst, '[')
		first := true
		values := fields{rest: kdata}
		for values.next() {
			if values.num != 1 || values.wt != 2 {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var err error
			if dst, err = appendValue(dst, values.data, depth+1); err != nil {
				return nil, err
			}
		}
		if values.err != nil {
			return nil, values.err
		}
		return append(dst, ']'), nil
	}
	return nil, ErrMalformed
}
