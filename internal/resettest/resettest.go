// Package resettest checks reset methods that clear a struct field by field
// (hot paths in the Wasm build avoid zeroing a struct whole, see
// plugin/core/decide): every field, exported or not, is set to a non-zero
// value, the reset runs, and every field but the kept ones must be zero
// again. A field added later and forgotten by the reset fails the check.
//
// It is imported by tests only.
package resettest

import (
	"errors"
	"reflect"
	"testing"
	"unsafe"
)

// Check fills every field of the struct ptr points to, runs reset, and
// fails t for each field (but those named in keep) that is not zero after.
func Check(t testing.TB, ptr any, reset func(), keep ...string) {
	t.Helper()
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		t.Fatalf("resettest: want a pointer to a struct, got %T", ptr)
	}
	s := v.Elem()
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	filled := map[string]bool{}
	for i := 0; i < s.NumField(); i++ {
		name := s.Type().Field(i).Name
		f := settable(s.Field(i))
		fill(f)
		filled[name] = !f.IsZero() // an empty struct has no other value
	}
	reset()
	for i := 0; i < s.NumField(); i++ {
		name := s.Type().Field(i).Name
		if kept[name] || !filled[name] {
			continue
		}
		if f := s.Field(i); !f.IsZero() {
			t.Errorf("resettest: %s.%s is not reset (still %v)", s.Type(), name, settable(f))
		}
	}
}

// settable makes an unexported field writable.
func settable(f reflect.Value) reflect.Value {
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

var errFilled = errors.New("resettest: filled")

// fill sets f to a non-zero value of its type.
func fill(f reflect.Value) {
	switch f.Kind() {
	case reflect.Bool:
		f.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		f.SetUint(1)
	case reflect.Float32, reflect.Float64:
		f.SetFloat(1)
	case reflect.String:
		f.SetString("x")
	case reflect.Slice:
		f.Set(reflect.MakeSlice(f.Type(), 1, 1))
	case reflect.Map:
		f.Set(reflect.MakeMap(f.Type()))
	case reflect.Pointer:
		f.Set(reflect.New(f.Type().Elem()))
	case reflect.Chan:
		f.Set(reflect.MakeChan(f.Type(), 0))
	case reflect.Func:
		f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value { panic("resettest") }))
	case reflect.Interface:
		if e := reflect.ValueOf(errFilled); e.Type().AssignableTo(f.Type()) {
			f.Set(e)
		}
	case reflect.Array:
		if f.Len() > 0 {
			fill(f.Index(0))
		}
	case reflect.Struct:
		for i := 0; i < f.NumField(); i++ {
			fill(settable(f.Field(i)))
		}
	}
}
