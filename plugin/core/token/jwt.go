package token

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/core/internal/jsonscan"
)

// MaxSegmentLen bounds a decoded header or payload (a MaxTokenLen token
// cannot hold more).
const MaxSegmentLen = MaxTokenLen * 3 / 4

// Parts are the segments of a compact JWS, still base64url-encoded.
type Parts struct {
	Header, Payload, Signature string
	// SigningInput is "<header>.<payload>", what the signature covers.
	SigningInput string
}

// Split splits a compact JWS into its three segments. Header and payload
// must be non-empty; the signature may be empty (verification decides).
func Split(tok string) (Parts, error) {
	if len(tok) > MaxTokenLen {
		return Parts{}, ErrTooLong
	}
	i := strings.IndexByte(tok, '.')
	if i <= 0 {
		return Parts{}, ErrNotJWT
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j <= 0 {
		return Parts{}, ErrNotJWT
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return Parts{}, ErrNotJWT
	}
	return Parts{Header: tok[:i], Payload: tok[i+1 : j], Signature: tok[j+1:], SigningInput: tok[:j]}, nil
}

var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// DecodeSegment decodes a base64url segment into dst and returns the number
// of bytes written. It does not allocate. dst must hold
// DecodedLen(len(seg)) bytes.
//
// Only the canonical encoding of RFC 7515 section 2 is accepted: the
// URL-safe alphabet, no padding, no whitespace or other characters, and the
// unused low bits of the last character zero. Every byte string then has
// exactly one encoding, so a token has exactly one spelling and the
// fingerprint of its raw text names it (a variant with '=' appended or
// with the last character's unused bits flipped would otherwise decode to
// the same bytes, verify, and get a fingerprint of its own).
func DecodeSegment(dst []byte, seg string) (int, error) {
	if len(seg)%4 == 1 {
		return 0, ErrBadBase64
	}
	if DecodedLen(len(seg)) > len(dst) {
		return 0, ErrPayloadLarge
	}
	n := 0
	for len(seg) >= 4 {
		a, b, c, d := b64[seg[0]], b64[seg[1]], b64[seg[2]], b64[seg[3]]
		if a|b|c|d == 0xff {
			return 0, ErrBadBase64
		}
		v := uint(a)<<18 | uint(b)<<12 | uint(c)<<6 | uint(d)
		dst[n], dst[n+1], dst[n+2] = byte(v>>16), byte(v>>8), byte(v)
		n += 3
		seg = seg[4:]
	}
	switch len(seg) {
	case 2:
		a, b := b64[seg[0]], b64[seg[1]]
		if a|b == 0xff || b&0x0f != 0 {
			return 0, ErrBadBase64
		}
		dst[n] = a<<2 | b>>4
		n++
	case 3:
		a, b, c := b64[seg[0]], b64[seg[1]], b64[seg[2]]
		if a|b|c == 0xff || c&0x03 != 0 {
			return 0, ErrBadBase64
		}
		v := uint(a)<<12 | uint(b)<<6 | uint(c)
		dst[n], dst[n+1] = byte(v>>10), byte(v>>2)
		n += 2
	}
	return n, nil
}

// CanonicalSegment reports whether seg is canonical base64url (see
// DecodeSegment) without decoding it.
func CanonicalSegment(seg string) bool {
	if len(seg)%4 == 1 {
		return false
	}
	for i := 0; i < len(seg); i++ {
		if b64[seg[i]] == 0xff {
			return false
		}
	}
	switch len(seg) % 4 {
	case 2:
		return b64[seg[len(seg)-1]]&0x0f == 0
	case 3:
		return b64[seg[len(seg)-1]]&0x03 == 0
	}
	return true
}

// NonCanonicalJWT reports whether tok is shaped as a compact JWS (three
// segments of base64url characters, optionally '='-padded) of which a
// segment is padded or has non-zero unused bits: a re-spelling of another
// token, which lenient decoders accept. Opaque tokens are not JWT-shaped.
func NonCanonicalJWT(tok string) bool {
	p, err := Split(tok)
	if err != nil {
		return false
	}
	bad := false
	for _, seg := range [3]string{p.Header, p.Payload, p.Signature} {
		trimmed := strings.TrimRight(seg, "=")
		for i := 0; i < len(trimmed); i++ {
			if b64[trimmed[i]] == 0xff {
				return false // not base64url: not a JWT
			}
		}
		if len(trimmed)%4 == 1 {
			return false // no base64 encoding has this length: not a JWT
		}
		if len(trimmed) != len(seg) || !CanonicalSegment(trimmed) {
			bad = true
		}
	}
	return bad
}

// CheckCanonical checks that tok is a compact JWS whose three segments are
// canonical base64url, without decoding or verifying it: for tokens
// verified elsewhere (jwt_authn) whose fingerprint still names them.
func CheckCanonical(tok string) error {
	p, err := Split(tok)
	if err != nil {
		return err
	}
	if !CanonicalSegment(p.Header) || !CanonicalSegment(p.Payload) || !CanonicalSegment(p.Signature) {
		return ErrBadBase64
	}
	return nil
}

// DecodedLen is the decoded size of an unpadded base64url segment of n chars.
func DecodedLen(n int) int { return n * 3 / 4 }

// ClaimNames are the configured claim names, tried in order.
type ClaimNames struct {
	Session []string // e.g. sid, jti, sessionId
	User    []string // e.g. sub, id
}

// Claims are the claims the filter uses. Strings may alias the decoded
// payload (see Decoder).
type Claims struct {
	SessionID string // from the first session claim present; "" when none
	UserID    string // from the first user claim present; "" when none
	IssuedAt  int64  // iat, Unix seconds; valid when HasIssuedAt
	ExpiresAt int64  // exp
	NotBefore int64  // nbf
	Issuer    string // iss ("" when absent)
	// Audience is aud: a string's value, or an array's JSON text (starting
	// with '['; its elements are strings). "" when absent. See
	// AudienceMatches.
	Audience string

	HasIssuedAt, HasExpiresAt, HasNotBefore bool
}

// Clone returns c with its strings copied, detached from any buffer.
func (c Claims) Clone() Claims {
	c.SessionID = strings.Clone(c.SessionID)
	c.UserID = strings.Clone(c.UserID)
	c.Issuer = strings.Clone(c.Issuer)
	c.Audience = strings.Clone(c.Audience)
	return c
}

// AudienceMatches reports whether c's aud names one of audiences.
func (c *Claims) AudienceMatches(audiences []string) bool {
	if c.Audience == "" {
		return false
	}
	if c.Audience[0] != '[' {
		return slices.Contains(audiences, c.Audience)
	}
	found := false
	p := jsonscan.New(c.Audience)
	p.Array(1, func() bool {
		v, esc, ok := p.Str()
		if !ok {
			return false
		}
		if esc {
			v = jsonscan.Unescape(v)
		}
		found = found || slices.Contains(audiences, v)
		return true
	})
	return found
}

// ClaimError says which claim has a value of the wrong type or form.
type ClaimError struct {
	Claim string
	Want  string
}

func (e *ClaimError) Error() string {
	if e.Want == "" {
		return fmt.Sprintf("claim %q appears more than once", e.Claim)
	}
	return fmt.Sprintf("claim %q must be %s", e.Claim, e.Want)
}

// MaxIDLen bounds the value of a session or user claim.
const MaxIDLen = 256

// MaxMembers bounds the number of members of a token's header or payload.
const MaxMembers = 256

// ErrTooManyMembers refuses a header or payload with more than MaxMembers members.
var ErrTooManyMembers = errors.New("token header or payload has more than 256 members")

const wantID = "a printable string of at most 256 bytes"

// ValidID reports whether s may name a session or a user: at most MaxIDLen
// bytes of valid UTF-8 without control characters (C0, DEL, C1). Such
// values become keys and header values (x-session-id, x-user-id).
func ValidID(s string) bool {
	if len(s) > MaxIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return false
		}
	}
	return true
}

// memberSet detects duplicate member names among at most MaxMembers. The
// first 32 names live inline (a typical token has fewer members, and the
// set is zeroed on every parse); more spill into a slice.
type memberSet struct {
	small [32]string
	more  []string
	n     int
}

// add records name; it returns an error for a duplicate or one too many.
func (m *memberSet) add(name string) error {
	for i := 0; i < m.n && i < len(m.small); i++ {
		if len(m.small[i]) == len(name) && m.small[i] == name {
			return &ClaimError{Claim: name}
		}
	}
	for _, s := range m.more {
		if len(s) == len(name) && s == name {
			return &ClaimError{Claim: name}
		}
	}
	switch {
	case m.n == MaxMembers:
		return ErrTooManyMembers
	case m.n < len(m.small):
		m.small[m.n] = name
	default:
		m.more = append(m.more, name)
	}
	m.n++
	return nil
}

// ParseClaims reads the claims from a JSON object payload.
//
// Claim names are matched literally against top-level member names. Rules:
//   - a member name may appear only once (after unescaping): a payload
//     with a duplicate is refused (*ClaimError), as JSON parsers disagree
//     on which of the two counts (RFC 7519 section 4);
//   - at most MaxMembers members;
//   - SessionID / UserID come from the first name in names.Session /
//     names.User (configuration order, not payload order) whose value is a
//     non-empty string or an integer number (its decimal text); a value of
//     another type (object, array, bool, null, fraction) is skipped as if
//     the claim were absent; a string value of any of these claims must
//     satisfy ValidID (else *ClaimError);
//   - iat, exp and nbf must be numbers when present (fractions are
//     truncated); iss must be a string; aud a string or an array of
//     strings; any other type is a *ClaimError.
//
// The payload must be valid JSON and an object.
func ParseClaims(payload string, names ClaimNames) (Claims, error) {
	p := jsonscan.New(payload)
	if p.Peek() != '{' {
		return Claims{}, ErrNotObject
	}
	var c Claims
	var err error
	var members memberSet
	ids := newIDPick(names)
	ok := p.Object(1, func(name string, nameEsc bool) bool {
		rest := p.Rest()
		kind, text, esc, ok := p.Value(1)
		if !ok {
			return false
		}
		if err != nil {
			return true // keep validating: a syntax error wins over a claim error
		}
		if nameEsc {
			name = jsonscan.Unescape(name)
		}
		if err = members.add(name); err != nil {
			return true
		}
		switch name {
		case "iat", "exp", "nbf":
			var dst *int64
			var has *bool
			switch name {
			case "iat":
				dst, has = &c.IssuedAt, &c.HasIssuedAt
			case "exp":
				dst, has = &c.ExpiresAt, &c.HasExpiresAt
			default:
				dst, has = &c.NotBefore, &c.HasNotBefore
			}
			if kind != jsonscan.Number {
				err = &ClaimError{Claim: name, Want: "a number"}
				return true
			}
			*dst, *has = numberValue(text), true
			return true
		case "iss":
			if kind != jsonscan.String {
				err = &ClaimError{Claim: name, Want: "a string"}
				return true
			}
			c.Issuer = text
			if esc {
				c.Issuer = jsonscan.Unescape(text)
			}
			return true
		case "aud":
			switch kind {
			case jsonscan.String:
				c.Audience = text
				if esc {
					c.Audience = jsonscan.Unescape(text)
				}
				if strings.HasPrefix(c.Audience, "[") {
					err = &ClaimError{Claim: name, Want: "a string not starting with '['"}
				}
			case jsonscan.Array:
				raw := strings.TrimRight(rest[:len(rest)-len(p.Rest())], " \t\r\n")
				if !stringArray(raw) {
					err = &ClaimError{Claim: name, Want: "a string or an array of strings"}
					return true
				}
				c.Audience = raw
			default:
				err = &ClaimError{Claim: name, Want: "a string or an array of strings"}
			}
			return true
		}
		if si, ui := ids.rank(name); si >= 0 || ui >= 0 {
			s, ok, bad := idText(kind, text, esc)
			if bad {
				err = &ClaimError{Claim: name, Want: wantID}
				return true
			}
			if ok {
				ids.offer(&c, si, ui, s)
			}
		}
		return true
	})
	if !ok || !p.End() {
		return Claims{}, ErrNotObject
	}
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

// stringArray reports whether raw (a valid JSON array) holds only strings.
func stringArray(raw string) bool {
	p := jsonscan.New(raw)
	return p.Array(1, func() bool {
		_, _, ok := p.Str()
		return ok
	})
}

// CheckMembers checks that a JSON object's member names are unique (after
// unescaping) and at most MaxMembers. obj must be valid JSON.
func CheckMembers(obj string) error {
	p := jsonscan.New(obj)
	var members memberSet
	var err error
	p.Object(1, func(name string, esc bool) bool {
		if _, _, _, ok := p.Value(1); !ok {
			return false
		}
		if err == nil {
			if esc {
				name = jsonscan.Unescape(name)
			}
			err = members.add(name)
		}
		return true
	})
	return err
}

// idText returns the string form of an id claim: a non-empty string, or an
// integer number's literal text. bad is true for a string that fails
// ValidID.
func idText(kind jsonscan.Kind, text string, esc bool) (v string, ok, bad bool) {
	switch kind {
	case jsonscan.String:
		if esc {
			text = jsonscan.Unescape(text)
		}
		if !ValidID(text) {
			return "", false, true
		}
		return text, text != "", false
	case jsonscan.Number:
		if IsIntLiteral(text) {
			return text, true, false
		}
	}
	return "", false, false
}

// MaxClaimNames bounds each list of claim names.
const MaxClaimNames = 64

// indexOf returns the index of name in names (only the first MaxClaimNames
// count), or -1.
// idPick chooses SessionID and UserID among the claims named in
// ClaimNames: the claim named earliest wins, wherever it stands in the
// payload.
type idPick struct {
	names      ClaimNames
	sess, user int // rank of the claim SessionID (UserID) was taken from; len(names) when none yet
}

func newIDPick(names ClaimNames) idPick {
	return idPick{names: names, sess: len(names.Session), user: len(names.User)}
}

// rank returns where name stands in names.Session and names.User, -1
// where it is absent.
func (p *idPick) rank(name string) (si, ui int) {
	return indexOf(p.names.Session, name), indexOf(p.names.User, name)
}

// offer takes id, the value of the claim ranked si and ui, for SessionID
// and UserID where that claim ranks before the one they hold.
func (p *idPick) offer(c *Claims, si, ui int, id string) {
	if si >= 0 && si < p.sess {
		c.SessionID, p.sess = id, si
	}
	if ui >= 0 && ui < p.user {
		c.UserID, p.user = id, ui
	}
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if i >= MaxClaimNames {
			break
		}
		if n == name {
			return i
		}
	}
	return -1
}

// IsIntLiteral reports whether a JSON number's text is an integer of at
// most 19 digits (optionally negative): the only numbers that name a
// session or a user, by their text ("007" stays "007").
func IsIntLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numberValue converts a JSON number's text to Unix seconds (fractions
// truncated, out-of-range values clamped).
func numberValue(s string) int64 {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	f, _ := strconv.ParseFloat(s, 64) // valid JSON number: only range errors, f is ±Inf then
	return numericDate(f)
}

func numericDate(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// isObject reports whether s is valid JSON whose top-level value is an object.
func isObject(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return gjson.Valid(s)
		}
		return false
	}
	return false
}

// Decoder decodes token segments into buffers it owns and reuses. It is not
// safe for concurrent use; strings it returns are valid until its next call.
type Decoder struct {
	Names   ClaimNames
	header  []byte
	payload []byte
}

// NewDecoder returns a Decoder using the given claim names.
func NewDecoder(names ClaimNames) *Decoder {
	return &Decoder{Names: names, header: make([]byte, 1024), payload: make([]byte, MaxSegmentLen)}
}

// MaxHeaderLen bounds a decoded JOSE header.
const MaxHeaderLen = 1024

// Header decodes the JOSE header segment and returns its "alg" and "kid"
// (both "" when absent or not strings). The header must be a JSON object.
func (d *Decoder) Header(seg string) (alg, kid string, err error) {
	n, err := DecodeSegment(d.header, seg)
	if err != nil {
		if errors.Is(err, ErrPayloadLarge) {
			return "", "", errors.New("token header too large")
		}
		return "", "", err
	}
	h := bytesString(d.header[:n])
	if !isObject(h) {
		return "", "", ErrNotObject
	}
	if err := CheckMembers(h); err != nil {
		return "", "", err
	}
	r := gjson.Get(h, "alg")
	if r.Type == gjson.String {
		alg = r.Str
	}
	r = gjson.Get(h, "kid")
	if r.Type == gjson.String {
		kid = r.Str
	}
	return alg, kid, nil
}

// Payload decodes the payload segment and returns it as a string aliasing
// the Decoder's buffer (valid until the next call).
func (d *Decoder) Payload(seg string) (string, error) {
	n, err := DecodeSegment(d.payload, seg)
	if err != nil {
		return "", err
	}
	return bytesString(d.payload[:n]), nil
}

// Claims decodes the payload segment and parses its claims (see
// ParseClaims). The strings in the result alias the Decoder's buffer.
func (d *Decoder) Claims(seg string) (Claims, error) {
	p, err := d.Payload(seg)
	if err != nil {
		return Claims{}, err
	}
	return ParseClaims(p, d.Names)
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// FingerprintLen is the length of a fingerprint: base64url (unpadded) of a
// SHA-256 digest.
const FingerprintLen = 43

// Fingerprint writes the base64url (RawURLEncoding) SHA-256 of the raw token
// into dst. It does not allocate.
func Fingerprint(dst *[FingerprintLen]byte, tok string) {
	var sum [sha256.Size]byte
	if tok != "" {
		sum = sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
	} else {
		sum = sha256.Sum256(nil)
	}
	base64.RawURLEncoding.Encode(dst[:], sum[:])
}

// Sum returns the SHA-256 of the raw token (no allocation).
func Sum(tok string) [sha256.Size]byte {
	if tok == "" {
		return sha256.Sum256(nil)
	}
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
}

// AppendFingerprintKeySum appends "fp:<base64url of sum>" to dst.
func AppendFingerprintKeySum(dst []byte, sum *[sha256.Size]byte) []byte {
	var fp [FingerprintLen]byte
	base64.RawURLEncoding.Encode(fp[:], sum[:])
	return append(append(dst, "fp:"...), fp[:]...)
}

// AppendFingerprintKey appends "fp:<fingerprint of tok>" to dst.
func AppendFingerprintKey(dst []byte, tok string) []byte {
	var fp [FingerprintLen]byte
	Fingerprint(&fp, tok)
	return append(append(dst, "fp:"...), fp[:]...)
}

// AppendSessionKey appends "sid:<sid>" to dst.
func AppendSessionKey(dst []byte, sid string) []byte {
	return append(append(dst, "sid:"...), sid...)
}

// AppendUserKey appends "user:<id>" to dst.
func AppendUserKey(dst []byte, id string) []byte {
	return append(append(dst, "user:"...), id...)
}

// FingerprintKey returns "fp:<fingerprint of tok>" (allocates; for callouts).
func FingerprintKey(tok string) string {
	return string(AppendFingerprintKey(make([]byte, 0, 3+FingerprintLen), tok))
}

// SessionKey returns "sid:<sid>" (allocates; for callouts).
func SessionKey(sid string) string { return "sid:" + sid }

// UserKey returns "user:<id>" (allocates; for callouts).
func UserKey(id string) string { return "user:" + id }

// Keys returns the session keys of a token for callouts: "sid:<v>" when
// claims carry a session id, then always "fp:<...>".
func Keys(tok string, c Claims) []string {
	keys := make([]string, 0, 2)
	if c.SessionID != "" {
		keys = append(keys, SessionKey(c.SessionID))
	}
	return append(keys, FingerprintKey(tok))
}
