// Package token finds a bearer token in request headers, splits and decodes
// a JWT's segments, reads its claims with gjson (no encoding/json) and
// derives the lookup keys sid:<v>, fp:<sha256> and user:<id>.
//
// Everything here is written for the per-request hot path: extraction and
// key derivation do not allocate, and a Decoder reuses its buffers, so the
// strings it returns alias those buffers and are valid only until its next
// call (strings.Clone them to keep them).
package token

import (
	"errors"
	"strings"
)

// MaxTokenLen bounds a token's length; longer tokens are malformed.
const MaxTokenLen = 16 << 10

// Source tells where a token was found.
type Source uint8

// Token sources.
const (
	SourceNone   Source = iota // no token
	SourceHeader               // Authorization: Bearer
	SourceCookie               // the configured cookie
)

func (s Source) String() string {
	switch s {
	case SourceHeader:
		return "authorization"
	case SourceCookie:
		return "cookie"
	default:
		return "none"
	}
}

// Errors of extraction and decoding. They all mean "malformed token" (401).
var (
	ErrTooLong      = errors.New("token longer than 16 KiB")
	ErrEmptyBearer  = errors.New("empty bearer token")
	ErrBadChars     = errors.New("token has characters outside the base64url alphabet")
	ErrNotJWT       = errors.New("token is not a JWT (want three dot-separated segments)")
	ErrBadBase64    = errors.New("token segment is not valid base64url")
	ErrNotObject    = errors.New("token segment is not a JSON object")
	ErrPayloadLarge = errors.New("token payload too large")
	// ErrRepeatedToken: the request carries two different tokens where the
	// app may read either (two Authorization headers, the token cookie
	// twice): the filter cannot know which one the app will use.
	ErrRepeatedToken = errors.New("request carries more than one distinct token")
)

// Extract returns the token from an Authorization header value ("Bearer
// <t>", scheme case-insensitive) or, when there is none, from the cookie
// named cookieName in a Cookie header value ("" disables cookies). Other
// Authorization schemes (Basic, ...) are ignored. A token longer than
// MaxTokenLen, an empty bearer token or one with characters outside the
// JWT alphabet is returned with its source and an error. It does not
// allocate; tok aliases the input.
func Extract(authorization, cookie, cookieName string) (tok string, src Source, err error) {
	tok, src, err = Find(authorization, cookie, cookieName)
	if err == nil && src != SourceNone {
		err = CheckChars(tok)
	}
	return tok, src, err
}

// Find is Extract without the per-character check (CheckChars): for callers
// that recognise a token they already checked (a cache) without reading all
// of it again. It still refuses empty and over-long tokens.
func Find(authorization, cookie, cookieName string) (tok string, src Source, err error) {
	if t, ok := bearer(authorization); ok {
		if t == "" {
			return "", SourceHeader, ErrEmptyBearer
		}
		return t, SourceHeader, checkLen(t)
	}
	if cookieName == "" || cookie == "" {
		return "", SourceNone, nil
	}
	if t, ok := CookieValue(cookie, cookieName); ok && t != "" {
		return t, SourceCookie, checkLen(t)
	}
	return "", SourceNone, nil
}

func checkLen(t string) error {
	if len(t) > MaxTokenLen {
		return ErrTooLong
	}
	return nil
}

// CheckChars refuses a token with characters outside the JWT alphabet
// (base64url and '.'; no padding, see DecodeSegment).
func CheckChars(t string) error {
	for i := 0; i < len(t); i++ {
		if !jwtChar[t[i]] {
			return ErrBadChars
		}
	}
	return nil
}

// jwtChar marks the bytes a compact JWS may contain (base64url and '.').
var jwtChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'], t['.'] = true, true, true
	return t
}()

// bearer parses "Bearer <token>"; ok is false for another scheme or no header.
// Around the scheme it takes for white space what an app's split does,
// not only HTTP's SP and HTAB: VT, FF and NBSP (0xA0 is U+00A0 to Node,
// which reads header bytes as latin1, and \s matches it; 0xC2 0xA0 is
// U+00A0 to Go's strings.Fields). "Bearer\xA0<t>" is the token t to
// Strapi's getToken, so the filter checks t.
func bearer(h string) (string, bool) {
	h = trimSpaceLike(h)
	const scheme = "bearer"
	if len(h) < len(scheme) {
		return "", false
	}
	for i := 0; i < len(scheme); i++ {
		// ASCII case folding in place of strings.EqualFold: a byte loop
		// costs nothing where a call costs tens of nanoseconds (Wasm).
		if h[i]|0x20 != scheme[i] {
			return "", false
		}
	}
	rest := h[len(scheme):]
	if rest == "" {
		return "", true
	}
	if !spaceLike(rest[0]) {
		return "", false // e.g. "Bearerfoo"
	}
	return trimSpaceLike(rest), true
}

// spaceLike reports the bytes an app may split an Authorization value on:
// SP, HTAB, VT, FF, and NBSP as latin1 (0xA0) or as the UTF-8 lead byte
// before it (0xC2). (Envoy refuses CR, LF and NUL in a value.)
func spaceLike(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == 0xA0 || c == 0xC2
}

func trimSpaceLike(s string) string {
	for s != "" && spaceLike(s[0]) {
		s = s[1:]
	}
	for s != "" && spaceLike(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// CookieValue returns the first value of the cookie name in a Cookie header
// value (pairs separated by ';'), with surrounding double quotes removed.
func CookieValue(header, name string) (string, bool) {
	v, found, _ := CookieToken(header, name)
	return v, found
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// CookieToken returns the value of the cookie name in a Cookie header value
// (see CookieValue) and whether the header holds that cookie again with a
// different value (an empty value counts: a parser that takes the first
// sees no token, one that takes the last sees the other). It does not
// allocate.
func CookieToken(header, name string) (v string, found, repeated bool) {
	for header != "" {
		var pair string
		if i := strings.IndexByte(header, ';'); i >= 0 {
			pair, header = header[:i], header[i+1:]
		} else {
			pair, header = header, ""
		}
		val, ok := cookieValue(pair, name)
		if !ok {
			continue
		}
		if !found {
			v, found = val, true
		} else if val != v {
			repeated = true
		}
	}
	return v, found, repeated
}

// cookieValue is the value of one "name=value" pair of a Cookie header,
// trimmed and unquoted; ok is false for another name or no '='.
func cookieValue(pair, name string) (string, bool) {
	pair = trimOWS(pair)
	eq := strings.IndexByte(pair, '=')
	if eq < 0 || trimOWS(pair[:eq]) != name {
		return "", false
	}
	val := trimOWS(pair[eq+1:])
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	return val, true
}

// CookieValues returns every value of the cookie name in a Cookie header
// value, in order, quotes removed as by CookieValue (a parser may keep the
// first or the last; a caller that must not miss the one the app reads
// checks them all). It allocates; CookieToken is the hot path's.
func CookieValues(header, name string) []string {
	var out []string
	for header != "" {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		if v, ok := cookieValue(pair, name); ok {
			out = append(out, v)
		}
	}
	return out
}

// BearerToken returns the token of an Authorization value ("Bearer <t>");
// ok is false for another scheme.
func BearerToken(authorization string) (string, bool) { return bearer(authorization) }
