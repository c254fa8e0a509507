package token_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/token"
)

// flipLow returns seg with an unused low bit of its last character set
// (segments whose length is 2 or 3 mod 4 have 4 or 2 unused bits).
func flipLow(seg string) (string, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	switch len(seg) % 4 {
	case 2, 3:
		return seg[:len(seg)-1] + string(alphabet[last|1]), true
	}
	return "", false
}

// Variants are the re-spellings of a token that lenient base64url decoders
// accept: padding, non-zero unused bits, the standard alphabet, whitespace.
func Variants(tok string) map[string]string {
	p, err := token.Split(tok)
	if err != nil {
		panic(err)
	}
	segs := [3]string{p.Header, p.Payload, p.Signature}
	out := map[string]string{}
	join := func(i int, seg string) string {
		s := segs
		s[i] = seg
		return s[0] + "." + s[1] + "." + s[2]
	}
	for i, name := range []string{"header", "payload", "signature"} {
		seg := segs[i]
		out[name+" ="] = join(i, seg+"=")
		out[name+" =="] = join(i, seg+"==")
		if f, ok := flipLow(seg); ok {
			out[name+" low bits"] = join(i, f)
		}
		out[name+" +"] = join(i, strings.ReplaceAll(seg, "-", "+")+"+")
		out[name+" /"] = join(i, strings.ReplaceAll(seg, "_", "/")+"/")
		out[name+" space"] = join(i, seg[:1]+" "+seg[1:])
		out[name+" newline"] = join(i, seg[:1]+"\n"+seg[1:])
	}
	return out
}

func TestCanonicalOnly(t *testing.T) {
	// Lengths chosen so that every segment has unused bits (2 or 3 mod 4).
	tok := jwttest.HS256("k", `{"alg":"HS256"}`, `{"sid":"s-1","sub":"u"}`)
	require.NoError(t, token.CheckCanonical(tok))
	require.False(t, token.NonCanonicalJWT(tok))
	for name, v := range Variants(tok) {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, token.CheckCanonical(v))
			p, err := token.Split(v)
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, e1 := token.DecodeSegment(buf, p.Header)
			_, e2 := token.DecodeSegment(buf, p.Payload)
			_, e3 := token.DecodeSegment(buf, p.Signature)
			assert.True(t, e1 != nil || e2 != nil || e3 != nil, "some segment refused")
			if !strings.ContainsAny(v, " \n+/") {
				assert.True(t, token.NonCanonicalJWT(v), "a padded or bit-flipped JWT is recognised as a re-spelling")
			}
		})
	}
	// Opaque tokens are not JWTs.
	assert.False(t, token.NonCanonicalJWT("opaque-refresh-token"))
	assert.False(t, token.NonCanonicalJWT("a.b.c"))
	assert.False(t, token.NonCanonicalJWT("x+y.z/w.q=="))
}

func TestDecodeSegmentTrailingBits(t *testing.T) {
	buf := make([]byte, 16)
	for _, tc := range []struct {
		seg string
		ok  bool
	}{
		{"QQ", true}, {"QR", false}, {"QW", false}, {"Qf", false}, // 'A': 0x41 -> QQ; low 4 bits of Q must be 0
		{"QUI", true}, {"QUJ", false}, {"QUK", false}, // "AB"
		{"QUJD", true}, {"QUJD=", false}, {"QQ==", false}, {"QQ=", false},
		{"Q Q", false}, {"Q+", false}, {"Q/", false}, {"Q\n", false},
	} {
		_, err := token.DecodeSegment(buf, tc.seg)
		assert.Equal(t, tc.ok, err == nil, "%q: %v", tc.seg, err)
		assert.Equal(t, tc.ok, token.CanonicalSegment(tc.seg), tc.seg)
	}
}

func TestCookieToken(t *testing.T) {
	for _, tc := range []struct {
		header, v      string
		found, repeats bool
		all            []string // CookieValues
	}{
		{"", "", false, false, nil},
		{"a=1", "", false, false, nil},
		{"jwt=x", "x", true, false, []string{"x"}},
		{"jwt=x; jwt=x", "x", true, false, []string{"x", "x"}},
		{"jwt=x; jwt=y", "x", true, true, []string{"x", "y"}},
		{"jwt=; jwt=y", "", true, true, []string{"", "y"}},
		{`jwt="x"; jwt=x`, "x", true, false, []string{"x", "x"}},
		{"a=1; jwt=x;b=2;  jwt = y ", "x", true, true, []string{"x", "y"}},
		{"xjwt=1; jwtx=2", "", false, false, nil},
	} {
		v, found, rep := token.CookieToken(tc.header, "jwt")
		assert.Equal(t, tc.v, v, tc.header)
		assert.Equal(t, tc.found, found, tc.header)
		assert.Equal(t, tc.repeats, rep, tc.header)
		assert.Equal(t, tc.all, token.CookieValues(tc.header, "jwt"), tc.header)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _, _ = token.CookieToken("a=1; jwt=x.y.z; jwt=x.y.z", "jwt") })
	assert.Zero(t, allocs)
}

func TestHeaderDuplicateMembers(t *testing.T) {
	d := token.NewDecoder(names)
	_, _, err := d.Header(jwttest.B64(`{"alg":"HS256","alg":"none"}`))
	assert.ErrorContains(t, err, `"alg" appears more than once`)
	_, _, err = d.Header(jwttest.B64(`{"alg":"HS256","kid":"a","kid":"b"}`))
	assert.ErrorContains(t, err, `"kid" appears more than once`)
	alg, _, err := d.Header(jwttest.B64(`{"alg":"HS256","x":{"a":1,"a":1}}`))
	require.NoError(t, err)
	assert.Equal(t, "HS256", alg)
}

func TestTooManyMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i <= token.MaxMembers; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"m%d":1`, i)
	}
	b.WriteString("}")
	_, err := token.ParseClaims(b.String(), names)
	assert.ErrorIs(t, err, token.ErrTooManyMembers)
	_, err = token.ParseClaimsReference(b.String(), names)
	assert.ErrorIs(t, err, token.ErrTooManyMembers)
}

func TestAudienceMatches(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    bool
	}{
		{`{"aud":"api"}`, true},
		{`{"aud":"web"}`, false},
		{`{"aud":["web","api"]}`, true},
		{`{"aud":["web","x\u0061pi"]}`, false},
		{`{"aud":["web","\u0061pi"]}`, true},
		{`{"aud":[]}`, false},
		{`{}`, false},
	} {
		c, err := token.ParseClaims(tc.payload, names)
		require.NoError(t, err, tc.payload)
		assert.Equal(t, tc.want, c.AudienceMatches([]string{"api", "other"}), tc.payload)
	}
}

func TestValidID(t *testing.T) {
	for s, ok := range map[string]bool{
		"abc": true, "sé": true, "": true, "a b": true, strings.Repeat("x", token.MaxIDLen): true,
		"a\x00": false, "a\r": false, "a\n": false, "\t": false, "a\x7f": false, "a\u0085": false, "\xff": false,
		strings.Repeat("x", token.MaxIDLen+1): false,
	} {
		assert.Equal(t, ok, token.ValidID(s), "%q", s)
	}
}
