package filter_test

// Checks of README claims (the security model's body-reading paragraph,
// the logout of an expired token, compressed refresh answers). Each test
// asserts what the code does today; a comment names the README sentence.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/token"
)

// README: "A login body the filter cannot read that way is refused (400)
// too when identifier_path is set." Only a JSON body nesting deeper than
// 128 and a multipart body parsers read differently are refused; a body
// that does not parse as its type goes on (counted under the empty
// identifier).
func TestClaimLoginUnparsableBodyNotRefused(t *testing.T) {
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		var reached atomic.Int64
		for _, tc := range []struct{ name, ct, body string }{
			{"malformed JSON", "application/json", `{"identifier":"victim",`},
			{"multipart without its closing boundary", "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nvictim"},
			{"multipart content type without boundary", "multipart/form-data", "x"},
		} {
			n := len(stub.recorded().checks)
			r := h.do(t, request{method: "POST", path: "/api/auth/local", worker: 0, app: countingApp(&reached, 400),
				headers: [][2]string{{"content-type", tc.ct}}, body: []byte(tc.body)})
			assert.False(t, r.local, "%s: refused %d", tc.name, r.status)
			if rec := stub.recorded(); assert.Len(t, rec.checks, n+1, tc.name) {
				assert.Equal(t, "", rec.checks[n].Identifier, tc.name)
			}
		}
		assert.EqualValues(t, 3, reached.Load())
	})
}

// README: "A refresh or login body sent with a Content-Encoding ... is
// refused (415)." Only with refresh.request_token_path / login.identifier_path set.
func TestClaimContentEncodingConditions(t *testing.T) {
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(`"refresh":{"request_token_path":"","request_token_cookie":"c"},"login":{"identifier_path":""}`))
		h.tickAll(t)
		for _, path := range []string{"/api/auth/refresh", "/api/auth/local"} {
			r := h.do(t, request{method: "POST", path: path, worker: 0,
				headers: [][2]string{{"content-type", "application/json"}, {"content-encoding", "gzip"}}, body: gzipped(`{"x":1}`)})
			assert.False(t, r.local, "%s: %d", path, r.status)
		}
	})
}

func TestClaimContentEncodingDefaults(t *testing.T) {
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		// Defaults: 415 on both; identity passes.
		h2, _ := startStubbed(t, start, testConfig(""))
		h2.tickAll(t)
		for _, path := range []string{"/api/auth/refresh", "/api/auth/local"} {
			refusedAs(t, h2, request{method: "POST", path: path, worker: 0,
				headers: [][2]string{{"content-type", "application/json"}, {"content-encoding", "gzip"}}, body: gzipped(`{"x":1}`)}, 415, "invalid_request", path)
			r := h2.do(t, request{method: "POST", path: path, worker: 0,
				headers: [][2]string{{"content-type", "application/json"}, {"content-encoding", "identity"}}, body: []byte(`{"x":1}`)})
			assert.NotEqual(t, 415, r.status, path)
		}
	})
}

// README: "a body giving the token path more than 32 values or 8 distinct
// tokens" — the 8 counts the request_token_cookie values too; 128 levels.
func TestClaimRefreshLimits(t *testing.T) {
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, _ := startStubbed(t, start, testConfig(`"refresh":{"request_token_cookie":"`+refreshCookie+`"}`))
		h.tickAll(t)
		js := func(n int) string {
			var b strings.Builder
			b.WriteString("{")
			for i := range n {
				fmt.Fprintf(&b, `"refreshToken":"t%d",`, i%8)
			}
			b.WriteString(`"x":1}`)
			return b.String()
		}
		do := func(body, cookie string) response {
			hdrs := [][2]string{{"content-type", "application/json"}}
			if cookie != "" {
				hdrs = append(hdrs, [2]string{"cookie", cookie})
			}
			return h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: 0, headers: hdrs, body: []byte(body)})
		}
		// JSON and forms alike: 32 values pass, 33 are refused.
		assert.False(t, do(js(32), "").local, "32 values, 8 distinct")
		assert.Equal(t, 400, do(js(33), "").status, "33 JSON values refused")
		var form strings.Builder
		for i := range 32 {
			fmt.Fprintf(&form, "refreshToken=t%d&", i%8)
		}
		r32 := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: 0,
			headers: [][2]string{{"content-type", "application/x-www-form-urlencoded"}}, body: []byte(form.String())})
		assert.False(t, r32.local, "32 form values pass")
		r33 := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: 0,
			headers: [][2]string{{"content-type", "application/x-www-form-urlencoded"}}, body: []byte(form.String() + "refreshToken=t0")})
		assert.Equal(t, 400, r33.status, "33 form values refused")
		assert.Equal(t, 400, do(js(6), refreshCookie+"=c1; "+refreshCookie+"=c2; "+refreshCookie+"=c3").status,
			"6 distinct in the body + 3 in the cookie")
		assert.False(t, do(js(6), refreshCookie+"=c1; "+refreshCookie+"=c2").local, "6 + 2")
		deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
		assert.False(t, do(deep(128), "").local, "128 levels")
		assert.Equal(t, 400, do(deep(129), "").status, "129 levels")
		// "a body that does not parse as its type": any other content type is read as JSON.
		r := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: 0,
			headers: [][2]string{{"content-type", "text/plain"}}, body: []byte("hello")})
		assert.Equal(t, 400, r.status, "text/plain body read as JSON")
	})
}

// README: "A logout with an expired access token ... the filter revokes it
// and lets it through. With request_token_cookie set, the refresh token in
// that cookie is revoked with the access token."
func TestClaimExpiredLogoutRevokesRefreshCookie(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"refresh":{"request_token_cookie":"`+refreshCookie+`"}`))
		h.tickAll(t)
		now := time.Now().Unix()
		expired := jwt(map[string]any{"id": 51, "sid": "s-exp-51", "iat": now - 7200, "exp": now - 3600})
		var reached atomic.Int64
		r := h.do(t, request{method: "POST", path: "/api/auth/logout", worker: -1, app: countingApp(&reached, 200),
			headers: append(bearer(expired), [2]string{"cookie", refreshCookie + "=rt-51"})})
		assert.False(t, r.local, "%d %s", r.status, r.body)
		assert.EqualValues(t, 1, reached.Load())
		rec := stub.recorded()
		require.Len(t, rec.revoke, 1)
		assert.Contains(t, rec.revoke[0].Keys, "sid:s-exp-51")
		assert.Contains(t, rec.revoke[0].Keys, token.FingerprintKey("rt-51"))
	})
}

// README: "A 2xx refresh answer compressed anyway goes to the client and is
// reported without its new tokens" — the refresh token it sets as the
// request_token_cookie cookie is not reported either (RefreshCall needs
// the body's access token).
func TestClaimCompressedRefreshAnswer(t *testing.T) {
	eachHost(t, 1, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"refresh":{"request_token_cookie":"`+refreshCookie+`"}`))
		h.tickAll(t)
		next := userToken(52, "s-52")
		r := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: 0,
			headers: [][2]string{{"cookie", refreshCookie + "=rt-52a"}},
			app: func([][2]string, []byte) (int, [][2]string, []byte) {
				return 200, [][2]string{{"content-type", "application/json"}, {"content-encoding", "gzip"},
					{"set-cookie", refreshCookie + "=rt-52b; Path=/"}}, gzipped(`{"jwt":"` + next + `"}`)
			}})
		assert.False(t, r.refused())
		rec := stub.recorded()
		require.Len(t, rec.refresh, 1)
		assert.Empty(t, rec.refresh[0].Keys, "no access-token keys")
		assert.Empty(t, rec.refresh[0].RefreshKeys, "the cookie's refresh token is not reported")
		_ = token.FingerprintKey
	})
}
