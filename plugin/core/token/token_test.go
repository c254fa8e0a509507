package token_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/token"
)

func TestExtract(t *testing.T) {
	big := strings.Repeat("a", token.MaxTokenLen+1)
	tests := []struct {
		name, auth, cookie, cookieName string
		tok                            string
		src                            token.Source
		err                            error
	}{
		{name: "none"},
		{name: "bearer", auth: "Bearer abc.def.ghi", tok: "abc.def.ghi", src: token.SourceHeader},
		{name: "scheme case-insensitive", auth: "bEaReR abc", tok: "abc", src: token.SourceHeader},
		{name: "extra spaces", auth: "  Bearer    abc  ", tok: "abc", src: token.SourceHeader},
		{name: "tab", auth: "Bearer\tabc", tok: "abc", src: token.SourceHeader},
		{name: "empty bearer", auth: "Bearer", src: token.SourceHeader, err: token.ErrEmptyBearer},
		{name: "empty bearer spaces", auth: "Bearer   ", src: token.SourceHeader, err: token.ErrEmptyBearer},
		{name: "basic ignored", auth: "Basic dXNlcjpwYXNz", cookie: "jwt=x.y.z", cookieName: "jwt", tok: "x.y.z", src: token.SourceCookie},
		{name: "bearerx not bearer", auth: "Bearerx abc", src: token.SourceNone},
		// What an app's split takes for a separator (JavaScript's \s on latin1
		// header bytes, Go's strings.Fields): the token is the app's token.
		{name: "NBSP separator", auth: "Bearer\xa0abc", tok: "abc", src: token.SourceHeader},
		{name: "UTF-8 NBSP separator", auth: "Bearer\xc2\xa0abc", tok: "abc", src: token.SourceHeader},
		{name: "VT separator", auth: "Bearer\vabc", tok: "abc", src: token.SourceHeader},
		{name: "FF separator", auth: "Bearer\fabc", tok: "abc", src: token.SourceHeader},
		{name: "NBSP around", auth: "\xa0Bearer abc\xa0", tok: "abc", src: token.SourceHeader},
		{name: "NBSP only", auth: "Bearer\xa0", src: token.SourceHeader, err: token.ErrEmptyBearer},
		{name: "header before cookie", auth: "Bearer h.h.h", cookie: "jwt=c.c.c", cookieName: "jwt", tok: "h.h.h", src: token.SourceHeader},
		{name: "cookie among others", cookie: "a=1; jwt=c.c.c; b=2", cookieName: "jwt", tok: "c.c.c", src: token.SourceCookie},
		{name: "cookie first wins", cookie: "jwt=first; jwt=second", cookieName: "jwt", tok: "first", src: token.SourceCookie},
		{name: "cookie quoted", cookie: `jwt="q.q.q"`, cookieName: "jwt", tok: "q.q.q", src: token.SourceCookie},
		{name: "cookie prefix name not matched", cookie: "xjwt=1; jwtx=2", cookieName: "jwt", src: token.SourceNone},
		{name: "cookie disabled", cookie: "jwt=c.c.c", cookieName: "", src: token.SourceNone},
		{name: "cookie empty value", cookie: "jwt=", cookieName: "jwt", src: token.SourceNone},
		{name: "cookie no equals", cookie: "jwt; other", cookieName: "jwt", src: token.SourceNone},
		{name: "too long", auth: "Bearer " + big, src: token.SourceHeader, err: token.ErrTooLong},
		{name: "too long cookie", cookie: "jwt=" + big, cookieName: "jwt", src: token.SourceCookie, err: token.ErrTooLong},
		{name: "bad chars", auth: "Bearer abc def", src: token.SourceHeader, err: token.ErrBadChars},
		{name: "bad chars unicode", auth: "Bearer é.b.c", src: token.SourceHeader, err: token.ErrBadChars},
		{name: "64KiB garbage header", auth: strings.Repeat("x", 64<<10), src: token.SourceNone},
		{name: "64KiB cookie header", cookie: strings.Repeat("a=b; ", 13<<10) + "jwt=t.t.t", cookieName: "jwt", tok: "t.t.t", src: token.SourceCookie},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, src, err := token.Extract(tc.auth, tc.cookie, tc.cookieName)
			assert.Equal(t, tc.src, src)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.tok, tok)
		})
	}
}

func TestExtractNoAlloc(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_, _, _ = token.Extract("Bearer abc.def.ghi", "a=b; jwt=x", "jwt")
		_, _, _ = token.Extract("", "a=b; jwt=x.y.z", "jwt")
	})
	assert.Zero(t, allocs)
}

func TestSplit(t *testing.T) {
	tests := []struct {
		tok  string
		ok   bool
		want token.Parts
	}{
		{"a.b.c", true, token.Parts{Header: "a", Payload: "b", Signature: "c", SigningInput: "a.b"}},
		{"a.b.", true, token.Parts{Header: "a", Payload: "b", Signature: "", SigningInput: "a.b"}},
		{"a.b", false, token.Parts{}},
		{"abc", false, token.Parts{}},
		{".b.c", false, token.Parts{}},
		{"a..c", false, token.Parts{}},
		{"a.b.c.d", false, token.Parts{}},
		{"", false, token.Parts{}},
	}
	for _, tc := range tests {
		p, err := token.Split(tc.tok)
		if !tc.ok {
			assert.ErrorIs(t, err, token.ErrNotJWT, tc.tok)
			continue
		}
		require.NoError(t, err, tc.tok)
		assert.Equal(t, tc.want, p)
	}
}

func TestDecodeSegment(t *testing.T) {
	for _, s := range []string{"", "f", "fo", "foo", "foob", "fooba", "foobar", "\x00\xff\xfe{}", strings.Repeat("xyz", 100)} {
		enc := base64.RawURLEncoding.EncodeToString([]byte(s))
		buf := make([]byte, 1024)
		n, err := token.DecodeSegment(buf, enc)
		require.NoError(t, err, s)
		assert.Equal(t, s, string(buf[:n]))
		// the padded form is refused (when it differs: len%3 != 0)
		if padded := base64.URLEncoding.EncodeToString([]byte(s)); padded != enc {
			_, err = token.DecodeSegment(buf, padded)
			assert.ErrorIs(t, err, token.ErrBadBase64, padded)
		}
	}
	buf := make([]byte, 16)
	for _, bad := range []string{"a", "ab+c", "ab/c", "a===", "ab c", "abcde", "ab==c"} {
		_, err := token.DecodeSegment(buf, bad)
		assert.ErrorIs(t, err, token.ErrBadBase64, bad)
	}
	_, err := token.DecodeSegment(buf, strings.Repeat("A", 40))
	assert.ErrorIs(t, err, token.ErrPayloadLarge)
}

var names = token.ClaimNames{Session: []string{"sid", "jti", "sessionId"}, User: []string{"sub", "id"}}

func TestParseClaims(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    token.Claims
		errText string
	}{
		{name: "full", payload: `{"sid":"s1","sub":"u1","iat":100,"exp":200,"nbf":50}`,
			want: token.Claims{SessionID: "s1", UserID: "u1", IssuedAt: 100, ExpiresAt: 200, NotBefore: 50, HasIssuedAt: true, HasExpiresAt: true, HasNotBefore: true}},
		{name: "config order beats payload order", payload: `{"jti":"j","sessionId":"x","sid":"s"}`, want: token.Claims{SessionID: "s"}},
		{name: "first named claim kept when later ones follow", payload: `{"sid":"s","sessionId":"x","jti":"j","sub":"u","id":7}`,
			want: token.Claims{SessionID: "s", UserID: "u"}},
		{name: "fallback jti", payload: `{"jti":"j","id":7}`, want: token.Claims{SessionID: "j", UserID: "7"}},
		{name: "strapi sessionId and numeric id", payload: `{"id":12,"sessionId":"abc","iat":1}`, want: token.Claims{SessionID: "abc", UserID: "12", IssuedAt: 1, HasIssuedAt: true}},
		{name: "integer sid", payload: `{"sid":-42}`, want: token.Claims{SessionID: "-42"}},
		{name: "fraction sid skipped", payload: `{"sid":1.5,"jti":"j"}`, want: token.Claims{SessionID: "j"}},
		{name: "object sid skipped", payload: `{"sid":{"a":1},"jti":"j"}`, want: token.Claims{SessionID: "j"}},
		{name: "bool/null/array ids skipped", payload: `{"sid":true,"jti":null,"sessionId":[1],"sub":false,"id":{}}`, want: token.Claims{}},
		{name: "empty string skipped", payload: `{"sid":"","jti":"j"}`, want: token.Claims{SessionID: "j"}},
		{name: "duplicate sid refused", payload: `{"sid":"first","sid":"second"}`, errText: `claim "sid" appears more than once`},
		{name: "duplicate sub refused", payload: `{"sub":"a","x":1,"sub":"b"}`, errText: `claim "sub" appears more than once`},
		{name: "duplicate of a bad value refused", payload: `{"sid":{},"sid":"second","jti":"j"}`, errText: `"sid" appears more than once`},
		{name: "duplicate exp refused", payload: `{"exp":5,"exp":"x"}`, errText: `"exp" appears more than once`},
		{name: "duplicate unrelated member refused", payload: `{"foo":1,"foo":1}`, errText: `"foo" appears more than once`},
		{name: "duplicate through an escape refused", payload: `{"sid":"a","s\u0069d":"b"}`, errText: `"sid" appears more than once`},
		{name: "nested duplicates are not claims", payload: `{"x":{"a":1,"a":2},"sid":"s"}`, want: token.Claims{SessionID: "s"}},
		{name: "sid with LF", payload: `{"sid":"a\nb"}`, errText: `claim "sid" must be a printable string`},
		{name: "sub with CR", payload: `{"sub":"a\rb"}`, errText: `claim "sub" must be a printable string`},
		{name: "sid with NUL", payload: `{"sid":"a\u0000b"}`, errText: `claim "sid" must be a printable string`},
		{name: "sid with DEL", payload: "{\"sid\":\"a\x7fb\"}", errText: `claim "sid" must be a printable string`},
		{name: "sid with C1", payload: `{"sid":"a\u0085b"}`, errText: `claim "sid" must be a printable string`},
		{name: "fallback claim checked too", payload: `{"sid":"ok","jti":"x\ny"}`, errText: `claim "jti" must be a printable string`},
		{name: "sid too long", payload: `{"sid":"` + strings.Repeat("a", token.MaxIDLen+1) + `"}`, errText: `claim "sid" must be a printable string`},
		{name: "sid at the bound", payload: `{"sid":"` + strings.Repeat("a", token.MaxIDLen) + `"}`, want: token.Claims{SessionID: strings.Repeat("a", token.MaxIDLen)}},
		{name: "unicode sid", payload: `{"sid":"sé-✓"}`, want: token.Claims{SessionID: "sé-✓"}},
		{name: "iss and aud string", payload: `{"iss":"https://i","aud":"api"}`, want: token.Claims{Issuer: "https://i", Audience: "api"}},
		{name: "aud array", payload: `{"aud":["a", "b"] }`, want: token.Claims{Audience: `["a", "b"]`}},
		{name: "aud array of non-strings", payload: `{"aud":["a",1]}`, errText: `claim "aud" must be a string or an array`},
		{name: "aud number", payload: `{"aud":1}`, errText: `claim "aud" must be a string or an array`},
		{name: "iss number", payload: `{"iss":1}`, errText: `claim "iss" must be a string`},
		{name: "nested ignored", payload: `{"user":{"sid":"n"},"a":{"sub":"x"}}`, want: token.Claims{}},
		{name: "escaped value", payload: `{"sid":"a\"b\u00e9"}`, want: token.Claims{SessionID: "a\"bé"}},
		{name: "escaped key", payload: `{"s\u0069d":"k"}`, want: token.Claims{SessionID: "k"}},
		{name: "fractional exp truncated", payload: `{"exp":10.9}`, want: token.Claims{ExpiresAt: 10, HasExpiresAt: true}},
		{name: "huge exp clamped", payload: `{"exp":1e300}`, want: token.Claims{ExpiresAt: 1<<63 - 1, HasExpiresAt: true}},
		{name: "missing everything", payload: `{}`, want: token.Claims{}},
		{name: "string exp", payload: `{"exp":"200"}`, errText: `claim "exp" must be a number`},
		{name: "null iat", payload: `{"iat":null}`, errText: `claim "iat" must be a number`},
		{name: "array", payload: `[1,2]`, errText: "not a JSON object"},
		{name: "string", payload: `"x"`, errText: "not a JSON object"},
		{name: "truncated", payload: `{"sid":"x"`, errText: "not a JSON object"},
		{name: "trailing garbage", payload: `{"sid":"x"} x`, errText: "not a JSON object"},
		{name: "empty", payload: ``, errText: "not a JSON object"},
		{name: "not json", payload: `hello`, errText: "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := token.ParseClaims(tc.payload, names)
			if tc.errText != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.errText)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c)
		})
	}
}

func TestDecoder(t *testing.T) {
	d := token.NewDecoder(names)
	tok := jwttest.HS256("k", `{"alg":"HS256","kid":"k1"}`, `{"sid":"s","sub":"u"}`)
	p, err := token.Split(tok)
	require.NoError(t, err)
	alg, kid, err := d.Header(p.Header)
	require.NoError(t, err)
	assert.Equal(t, "HS256", alg)
	assert.Equal(t, "k1", kid)
	c, err := d.Claims(p.Payload)
	require.NoError(t, err)
	assert.Equal(t, "s", c.SessionID)
	kept := c.Clone()

	// The decoder reuses its buffer: detached copies survive the next call.
	p2, _ := token.Split(jwttest.Unsigned(`{"alg":"none"}`, `{"sid":"z","sub":"w"}`))
	_, err = d.Claims(p2.Payload)
	require.NoError(t, err)
	assert.Equal(t, "s", kept.SessionID)
	assert.Equal(t, "u", kept.UserID)

	// bad segments
	_, _, err = d.Header(jwttest.B64(`[1]`))
	assert.ErrorIs(t, err, token.ErrNotObject)
	_, _, err = d.Header(jwttest.B64(strings.Repeat(" ", 2000) + "{}"))
	assert.Error(t, err)
	_, err = d.Claims("!!!")
	assert.ErrorIs(t, err, token.ErrBadBase64)
	_, err = d.Claims(jwttest.B64("not json"))
	assert.ErrorIs(t, err, token.ErrNotObject)
	// huge but bounded payload: a 12 KiB payload decodes, a larger one does not fit
	huge := `{"sid":"s","pad":"` + strings.Repeat("x", 12000) + `"}`
	c, err = d.Claims(jwttest.B64(huge))
	require.NoError(t, err)
	assert.Equal(t, "s", c.SessionID)
	_, err = d.Claims(jwttest.B64(`{"pad":"` + strings.Repeat("x", 13000) + `"}`))
	assert.ErrorIs(t, err, token.ErrPayloadLarge)
}

func TestDecoderNoAlloc(t *testing.T) {
	d := token.NewDecoder(names)
	p, _ := token.Split(jwttest.HS256("k", `{"alg":"HS256"}`, `{"sid":"s-123","sub":"42","iat":1,"exp":2}`))
	allocs := testing.AllocsPerRun(100, func() {
		_, _, _ = d.Header(p.Header)
		_, _ = d.Claims(p.Payload)
	})
	assert.Zero(t, allocs)
}

func TestKeys(t *testing.T) {
	tok := "a.b.c"
	var fp [token.FingerprintLen]byte
	token.Fingerprint(&fp, tok)
	// sha256("a.b.c") in base64url, computed independently
	want := "fp:" + string(fp[:])
	assert.Equal(t, want, token.FingerprintKey(tok))
	assert.Len(t, token.FingerprintKey(tok), 46)
	assert.Equal(t, "fp:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", token.FingerprintKey(""))
	assert.Equal(t, "sid:x", token.SessionKey("x"))
	assert.Equal(t, "user:7", token.UserKey("7"))
	assert.Equal(t, []string{"sid:s", want}, token.Keys(tok, token.Claims{SessionID: "s"}))
	assert.Equal(t, []string{want}, token.Keys(tok, token.Claims{}))
	allocs := testing.AllocsPerRun(100, func() {
		var buf [64]byte
		b := token.AppendFingerprintKey(buf[:0], tok)
		_ = token.AppendSessionKey(b[:0], "abc")
	})
	assert.Zero(t, allocs)
}
