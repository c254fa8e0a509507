package authflow_test

// Parser spellings: request bodies the app's parsers (koa-body: co-body + qs for
// urlencoded, formidable for multipart, JSON.parse) read as carrying
// refreshToken = rt-old (or identifier = victim), while the filter reads
// another value or none. Each row fails when the filter neither finds the
// app's value nor refuses the body.

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/config"
)

type probeRow struct{ name, ct, body string }

const (
	probeForm  = "application/x-www-form-urlencoded"
	probeMulti = "multipart/form-data; boundary=B"
)

// Rows the app reads as refreshToken=rt-old.
var refreshProbes = []probeRow{
	// qs (co-body, allowDots): after a balanced [..] group, text up to the
	// next '[' is dropped (old qs: the child regex skips it; qs >= 6.14:
	// splitKeyIntoSegments jumps to the next '['). The filter keeps it as a
	// segment.
	{"form: [refreshToken]x (qs drops text after a bracket group)", probeForm, "[refreshToken]x=rt-old"},
	{"form: [refreshToken]+ (trailing space after the group)", probeForm, "[refreshToken]+=rt-old"},
	{"form: [refreshToken]%20", probeForm, "[refreshToken]%20=rt-old"},
	// qs splits a pair at the first "]=" when there is one, the filter at
	// the first "=": the filter's key is "[refreshToken]a", value "b]=rt-old".
	{"form: [refreshToken]a=b]=rt-old (qs splits at ']=')", probeForm, "[refreshToken]a=b]=rt-old"},
	// formidable: /\bname=("([^"]*)"|([token]+))/i over the whole
	// Content-Disposition value, leftmost match; Go: the name parameter.
	{"multipart: x-name=refreshToken (\\b before name= after '-')", probeMulti,
		"--B\r\nContent-Disposition: form-data; x-name=refreshToken\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: name= inside a quoted filename", probeMulti,
		"--B\r\nContent-Disposition: form-data; filename=\"a name=refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: name= inside another quoted parameter, real name decoy", probeMulti,
		"--B\r\nContent-Disposition: form-data; x=\"y name=refreshToken\"; name=decoy\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: name* (RFC 2231) overrides name in Go, formidable takes name=", probeMulti,
		"--B\r\nContent-Disposition: form-data; name=\"refreshToken\"; name*=UTF-8''decoy\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: name*0 continuation overrides name in Go", probeMulti,
		"--B\r\nContent-Disposition: form-data; name=\"refreshToken\"; name*0=decoy\r\n\r\nrt-old\r\n--B--\r\n"},
	// formidable's boundary: /boundary=(?:"([^"]+)"|([^;]+))/i on the raw
	// header; Go's: mime.ParseMediaType (quoted-pair unescaped, spaces
	// around '=' allowed). Different boundaries: formidable reads its parts,
	// Go sees only a preamble and its own close delimiter (no part, no error).
	{"multipart: boundary=\"a\\\"b\" (formidable: a\\; Go: a\"b)", `multipart/form-data; boundary="a\"b"`,
		"--a\\\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--a\\--\r\n--a\"b--\r\n"},
	{"multipart: boundary= \"B\" (formidable: ` \"B\"`; Go: B)", `multipart/form-data; boundary= "B"`,
		"-- \"B\"\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n-- \"B\"--\r\n--B--\r\n"},
	// Controls / candidates expected safe.
	{"control: form refreshToken", probeForm, "refreshToken=rt-old"},
	{"JSON: escaped key refresh\\u0054oken", "application/json", `{"refresh\u0054oken":"rt-old"}`},
	{"JSON: escaped value", "application/json", `{"refreshToken":"rt-\u006fld"}`},
	{"JSON: vnd.api+json", "application/vnd.api+json", `{"refreshToken":"rt-old"}`},
	{"JSON: csp-report", "application/csp-report", `{"refreshToken":"rt-old"}`},
	{"JSON: leading whitespace", "application/json", " \r\n\t{\"refreshToken\":\"rt-old\"}"},
	{"JSON: duplicate nested", "application/json", `{"refreshToken":"rt-old","a":{"refreshToken":"x"},"refreshToken":"rt-old"}`},
	{"form: 1001 params then the token", probeForm, func() string {
		s := ""
		for range 1000 {
			s += "a=1&"
		}
		return "refreshToken=rt-old&" + s + "refreshToken=zz"
	}()},
	{"form: key refresh%54oken", probeForm, "refresh%54oken=rt-old"},
	{"form: key %5BrefreshToken%5Dx", probeForm, "%5BrefreshToken%5Dx=rt-old"},
	{"multipart: header names in odd case", probeMulti,
		"--B\r\ncOnTeNt-DiSpOsItIoN: form-data; NAME=refreshToken\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: LF-only", probeMulti,
		"--B\nContent-Disposition: form-data; name=\"refreshToken\"\n\nrt-old\n--B--\n"},
	{"multipart: preamble with a fake part", probeMulti,
		"preamble\r\n--X\r\nContent-Disposition: form-data; name=\"decoy\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: boundary with trailing whitespace in the body", probeMulti,
		"--B \r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n"},
	{"multipart: boundary=B with trailing space in the header", "multipart/form-data; boundary=B ",
		"--B \r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B --\r\n"},
}

func TestParserSpellingRefreshBodies(t *testing.T) {
	route := config.Default().Refresh
	for _, tc := range refreshProbes {
		got, err := authflow.PresentedRefreshTokens([]byte(tc.body), tc.ct, "", route)
		if err != nil {
			continue // refused: safe
		}
		assert.True(t, slices.Contains(got, "rt-old"), "%s: the app reads refreshToken=rt-old, the filter found %q", tc.name, got)
	}
}

func TestParserSpellingLoginIdentifier(t *testing.T) {
	for _, tc := range []probeRow{
		{"form: [identifier]x", probeForm, "[identifier]x=victim&password=guess"},
		{"form: [identifier]+", probeForm, "[identifier]+=victim&password=guess"},
		{"multipart: x-name=identifier", probeMulti,
			"--B\r\nContent-Disposition: form-data; x-name=identifier\r\n\r\nvictim\r\n--B--\r\n"},
		{"multipart: name*= decoy", probeMulti,
			"--B\r\nContent-Disposition: form-data; name=identifier; name*=UTF-8''decoy\r\n\r\nvictim\r\n--B\r\nContent-Disposition: form-data; name=decoy\r\n\r\nzz\r\n--B--\r\n"},
	} {
		assert.Equal(t, "victim", authflow.LoginIdentifier([]byte(tc.body), tc.ct, "identifier"), tc.name)
	}
}

// FuzzPresentedRefreshTokens: any body and content type is read without a
// panic, every token returned is non-empty and distinct, and never more
// than MaxPresentedTokens.
func FuzzPresentedRefreshTokens(f *testing.F) {
	for _, r := range refreshProbes {
		f.Add([]byte(r.body), r.ct)
	}
	f.Add([]byte(`[[[[[[{"refreshToken":"a"}]]]]]]`), "application/json")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		toks, err := authflow.PresentedRefreshTokens(body, ct, "", config.Default().Refresh)
		if err != nil {
			return
		}
		if len(toks) > authflow.MaxPresentedTokens {
			t.Fatalf("%d tokens", len(toks))
		}
		seen := map[string]bool{}
		for _, tok := range toks {
			if tok == "" || seen[tok] {
				t.Fatalf("empty or repeated token in %q", toks)
			}
			seen[tok] = true
		}
	})
}
