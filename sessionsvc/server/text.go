package server

import (
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Text that reaches the database is UTF-8 without NUL bytes: PostgreSQL's
// text cannot hold a NUL and refuses invalid UTF-8 (a query with either
// failed as a 500, and a login check failed open), and SQLite would store
// a different string than the one asked for.

// URLTextProblem says what is wrong with a request's decoded path or query
// (a NUL byte, or not UTF-8), or "" when nothing is. The APIs answer 400.
func URLTextProblem(r *http.Request) string {
	if badText(r.URL.Path) {
		return "the URL path holds a NUL byte or is not UTF-8"
	}
	if r.URL.RawQuery == "" {
		return ""
	}
	for k, vs := range r.URL.Query() {
		if badText(k) {
			return "a query parameter's name holds a NUL byte or is not UTF-8"
		}
		for _, v := range vs {
			if badText(v) {
				return "query parameter " + k + " holds a NUL byte or is not UTF-8"
			}
		}
	}
	return ""
}

func badText(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }

// CleanText replaces, in every string v points to (struct fields, slices,
// maps' values, nested), each NUL byte and each invalid UTF-8 sequence with
// U+FFFD. Decoded JSON needs it for NUL alone (encoding/json already turns
// invalid UTF-8 into U+FFFD, but "\u0000" decodes to a NUL): free text such
// as a login identifier or a user agent is kept, readably, instead of the
// request failing.
func CleanText(v any) { cleanValue(reflect.ValueOf(v)) }

func cleanValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			cleanValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				cleanValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // bytes (json.RawMessage) are not text here
		}
		for i := range v.Len() {
			cleanValue(v.Index(i))
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if e := it.Value(); e.Kind() == reflect.String && badText(e.String()) {
				v.SetMapIndex(it.Key(), reflect.ValueOf(cleanString(e.String())).Convert(e.Type()))
			}
		}
	case reflect.String:
		if v.CanSet() && badText(v.String()) {
			v.SetString(cleanString(v.String()))
		}
	}
}

func cleanString(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
