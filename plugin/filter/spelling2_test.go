package filter_test

// A second probe's parser spellings: bodies on the refresh and login routes
// that the app's parsers (koa-body: co-body + qs with allowDots for
// urlencoded, formidable for multipart) read as refreshToken = the revoked
// token (or identifier = victim) while the filter read another name or
// none, and bodies that cost a worker its VM or seconds. Each failed before
// its fix.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/authflow"
)

// Parser spelling 2.1 (refresh route, urlencoded): qs drops the text that follows a
// balanced [..] group up to the next '[' (qs <= 6.13: the child regex
// /(\[[^[\]]*])/g skips it; qs 6.14's splitKeyIntoSegments jumps to the
// next '['), so "[refreshToken]x" is body.refreshToken; qs also splits a
// pair at its first "]=". The filter reads names the same way (qsKey);
// it once kept "x" as a segment and split at the first "=", and the
// revoked refresh token reached the app unchecked.
func TestParserSpellingRefreshFormTextAfterBracketGroup(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		refused := refreshOfRevoked(t, start, testConfig(""))
		const form = "application/x-www-form-urlencoded"
		for _, tc := range []struct{ name, body string }{
			{"control: refreshToken=", "refreshToken=rt-old"},
			{"[refreshToken]x", "[refreshToken]x=rt-old"},
			{"[refreshToken]+ (a space after the group)", "[refreshToken]+=rt-old"},
			{"%5BrefreshToken%5Dx", "%5BrefreshToken%5Dx=rt-old"},
			{"[refreshToken]a=b]=rt-old (qs splits at ']=')", "[refreshToken]a=b]=rt-old"},
		} {
			refused(t, tc.name, "/api/auth/refresh", [][2]string{{"content-type", form}}, []byte(tc.body))
		}
	})
}

// Parser spelling 2.2 (refresh route, multipart): formidable (v1, v2, v3) reads a
// part's name with /\bname=("([^"]*)"|([^()<>@,;:\\"/[\]?={}\s\t]+))/i
// over the whole Content-Disposition value, leftmost match; Go's
// mime.ParseMediaType (the filter) reads the name parameter, and lets an
// RFC 2231 name* override it. Each header below parses in Go (so it is not
// refused as ambiguous) with no name, or another name.
func TestParserSpellingRefreshMultipartNameRegex(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		refused := refreshOfRevoked(t, start, testConfig(""))
		for _, tc := range []struct{ name, disposition string }{
			{"control: name=refreshToken", `form-data; name="refreshToken"`},
			{"x-name=refreshToken (\\b between '-' and 'n')", `form-data; x-name=refreshToken`},
			{"name= inside a quoted filename (formidable >= 2: a field, no Content-Type)", `form-data; filename="a name=refreshToken"`},
			{"name= inside another quoted parameter, real name a decoy", `form-data; x="y name=refreshToken"; name=decoy`},
			{"name*= (RFC 2231) overrides name in Go", `form-data; name="refreshToken"; name*=UTF-8''decoy`},
			{"name*0= continuation overrides name in Go", `form-data; name="refreshToken"; name*0=decoy`},
		} {
			body := "--B\r\nContent-Disposition: " + tc.disposition + "\r\n\r\nrt-old\r\n--B--\r\n"
			refused(t, tc.name, "/api/auth/refresh", [][2]string{{"content-type", "multipart/form-data; boundary=B"}}, []byte(body))
		}
	})
}

// Parser spelling 2.3 (refresh route, multipart): formidable takes the boundary with
// /boundary=(?:"([^"]+)"|([^;]+))/i on the raw header, Go's
// mime.ParseMediaType unescapes a quoted-pair and allows whitespace around
// '='. With a different boundary each, formidable reads its parts while Go
// sees a preamble and then its own close delimiter: no part, no error, no
// token. (Both content types pass koa-body's ctx.is('multipart').)
func TestParserSpellingRefreshMultipartBoundaryMismatch(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		refused := refreshOfRevoked(t, start, testConfig(""))
		for _, tc := range []struct{ name, ct, body string }{
			{`boundary="a\"b" (formidable: a\ ; Go: a"b)`, `multipart/form-data; boundary="a\"b"`,
				"--a\\\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--a\\--\r\n--a\"b--\r\n"},
			{`boundary= "B" (formidable: ' "B"' ; Go: B)`, `multipart/form-data; boundary= "B"`,
				"-- \"B\"\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n-- \"B\"--\r\n--B--\r\n"},
		} {
			refused(t, tc.name, "/api/auth/refresh", [][2]string{{"content-type", tc.ct}}, []byte(tc.body))
		}
	})
}

// Parser spelling 2.4 (login route, lockout evasion): the same spellings hide the
// identifier from the pre-login check (the filter counts "" or a decoy)
// while Strapi logs in as victim.
func TestParserSpellingLoginIdentifierHidden(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		var reached atomic.Int64
		const form, multi = "application/x-www-form-urlencoded", "multipart/form-data; boundary=B"
		for _, tc := range []struct{ name, ct, body string }{
			{"control: form identifier=", form, "identifier=victim&password=guess"},
			{"form [identifier]x", form, "[identifier]x=victim&password=guess"},
			{"form [identifier]+", form, "[identifier]+=victim&password=guess"},
			{"multipart x-name=identifier", multi,
				"--B\r\nContent-Disposition: form-data; x-name=identifier\r\n\r\nvictim\r\n--B\r\nContent-Disposition: form-data; name=password\r\n\r\nguess\r\n--B--\r\n"},
			{"multipart name*= decoy", multi,
				"--B\r\nContent-Disposition: form-data; name=identifier; name*=UTF-8''decoy\r\n\r\nvictim\r\n--B\r\nContent-Disposition: form-data; name=password\r\n\r\nguess\r\n--B--\r\n"},
		} {
			n := len(stub.recorded().checks)
			h.do(t, request{method: "POST", path: "/api/auth/local", worker: -1, app: countingApp(&reached, 400),
				headers: [][2]string{{"user-agent", "TestAgent/1.0"}, {"content-type", tc.ct}}, body: []byte(tc.body)})
			rec := stub.recorded()
			if assert.Len(t, rec.checks, n+1, tc.name) {
				assert.Equal(t, "victim", rec.checks[n].Identifier, "%s: the login check counted another name than the app checks", tc.name)
			}
		}
		// A boundary formidable and the filter read differently: refused
		// before any check (the filter cannot know the name).
		n, before := len(stub.recorded().checks), reached.Load()
		r := h.do(t, request{method: "POST", path: "/api/auth/local", worker: -1, app: countingApp(&reached, 400),
			headers: [][2]string{{"content-type", `multipart/form-data; boundary="a\"b"`}},
			body:    []byte("--a\\\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nvictim\r\n--a\\--\r\n--a\"b--\r\n")})
		require.True(t, r.local)
		assert.Equal(t, 400, r.status)
		assert.Len(t, stub.recorded().checks, n)
		assert.Equal(t, before, reached.Load(), "the app saw no login")
	})
}

// Parser spelling 2.5 (resources): a 1 MiB JSON body of '[' on the login route (no
// credentials needed) or the refresh route makes gjson.ValidBytes recurse
// once per byte (validany/validarray, no depth limit; jsonscan's MaxDepth
// guards the token path only): natively ~130 MiB of goroutine stack and
// ~0.8 s; on wazero the VM traps ("proxy_on_request_body: stack overflow",
// between 400k and 700k levels; V8's native stack in Envoy is smaller).
// One unauthenticated request per worker then kills its VM: with
// failure_policy FAIL_CLOSED (envoy.yaml) every later request on that
// worker gets 503 until Envoy restarts (FAIL_OPEN would pass them all
// unchecked). Must not trap, and should be bounded.
func TestParserSpellingDeepJSONBody(t *testing.T) {
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(""))
		var reached atomic.Int64
		body := []byte(strings.Repeat("[", 1<<20))
		for _, path := range []string{"/api/auth/local", "/api/auth/refresh"} {
			r := h.do(t, request{method: "POST", path: path, worker: 0, app: countingApp(&reached, 400),
				headers: [][2]string{{"content-type", "application/json"}}, body: body})
			require.True(t, r.local, path)
			assert.Equal(t, 400, r.status, "%s: a body nesting deeper than %d is refused unread", path, authflow.MaxJSONDepth)
		}
		assert.Zero(t, reached.Load())
		// The VM still serves.
		r := h.do(t, get("/api/articles", nil, 0))
		require.Equal(t, 200, r.status)
	})
}

// Parser spelling 2.6 (resources, refresh route): a 1 MiB body repeating refreshToken
// with ~48k distinct values (JSON duplicate keys or a form) makes
// PresentedRefreshTokens dedupe with slices.Contains, quadratic: ~3 s
// natively per request, several times that in the VM, during which the
// Envoy worker thread serves nothing else; then CheckToken runs once per
// value. Unauthenticated, one request per worker.
func TestParserSpellingRefreshManyDistinctTokens(t *testing.T) {
	var js, form strings.Builder
	js.WriteString("{")
	for i := 0; js.Len() < 1<<20-40; i++ {
		fmt.Fprintf(&js, `"refreshToken":"%x",`, i)
		fmt.Fprintf(&form, `refreshToken=%x&`, i)
	}
	js.WriteString(`"x":1}`)
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		var reached atomic.Int64
		for _, tc := range []struct{ ct, body string }{
			{"application/json", js.String()},
			{"application/x-www-form-urlencoded", form.String()},
		} {
			r := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: 0, app: countingApp(&reached, 401),
				headers: [][2]string{{"content-type", tc.ct}}, body: []byte(tc.body)})
			require.True(t, r.local, tc.ct)
			assert.Equal(t, 400, r.status, "%s: thousands of presented tokens are refused, not each checked", tc.ct)
		}
		assert.Zero(t, reached.Load())
	})
}
