package token_test

import (
	"strings"
	"testing"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/token"
)

func FuzzExtractToken(f *testing.F) {
	f.Add("Bearer a.b.c", "jwt=x", "jwt")
	f.Add("bearer ", "a=b; jwt=\"q\"", "jwt")
	f.Add("Basic x", ";;=;jwt=;", "jwt")
	f.Add(strings.Repeat("B", 100), "jwt", "")
	f.Fuzz(func(t *testing.T, auth, cookie, name string) {
		tok, src, err := token.Extract(auth, cookie, name)
		if err == nil && src != token.SourceNone {
			if tok == "" || len(tok) > token.MaxTokenLen {
				t.Fatalf("bad token %q from %v", tok, src)
			}
		}
		if src == token.SourceNone && tok != "" {
			t.Fatal("token without source")
		}
		if src == token.SourceHeader && !strings.Contains(auth, tok) {
			t.Fatal("token not from header")
		}
		if src == token.SourceCookie && !strings.Contains(cookie, tok) {
			t.Fatal("token not from cookie")
		}
	})
}

func FuzzDecodeClaims(f *testing.F) {
	f.Add(jwttest.HS256("k", `{"alg":"HS256"}`, `{"sid":"s","sub":1,"exp":2}`))
	f.Add(jwttest.Unsigned(`{"alg":"none"}`, `{"sid":{"x":1},"sid":"y","iat":"z"}`))
	f.Add("a.b.c")
	f.Add("e30.e30.")
	f.Add("eyJ.eyJ.x")
	d := token.NewDecoder(names)
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := token.Split(tok)
		if err != nil {
			return
		}
		_, _, _ = d.Header(p.Header)
		c, err := d.Claims(p.Payload)
		if err != nil {
			return
		}
		if c.SessionID != "" && len(c.SessionID) > len(tok) {
			t.Fatal("session id longer than the token")
		}
		// Parsing the decoded payload directly gives the same claims.
		payload, err := d.Payload(p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := token.ParseClaims(strings.Clone(payload), names)
		if err != nil || c2 != c {
			t.Fatalf("inconsistent: %v %+v %+v", err, c, c2)
		}
	})
}

// FuzzClaimScanner checks the one-pass claims scanner against the gjson
// reference (gjson.Valid + ForEach) on arbitrary payloads.
func FuzzClaimScanner(f *testing.F) {
	for _, s := range []string{`{"sid":"a","sub":1,"exp":2.5,"iat":-1e3}`, `{"a":[1,{"b":null}],"sid":"\u0041"}`,
		`{"sid":01}`, `{"x":-}`, `{"x":1.}`, `{"x":"\x"}`, `{} `, ` {"exp":"1"}`, `{"sid":"a",}`, `{"s\"id":1}`, `{"sid":"é"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		if strings.Count(payload, "[")+strings.Count(payload, "{") > 60 {
			return // the scanner bounds nesting; gjson does not
		}
		got, err := token.ParseClaims(payload, names)
		want, werr := token.ParseClaimsReference(payload, names)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: scanner err %v, reference err %v", payload, err, werr)
		}
		if err == nil && got != want {
			t.Fatalf("%q: scanner %+v, reference %+v", payload, got, want)
		}
	})
}
