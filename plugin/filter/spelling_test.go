package filter_test

// Spellings from an attacker's probe of the filter: each row is a way a
// request the filter must refuse reached the app, or a login or logout the
// filter observed wrongly, given what the app (Strapi on Koa with
// koa-body/co-body/qs/formidable, or a typical Express/Go app) reads. Each
// failed before its fix; every row names the spelling.

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

const bom = "\xef\xbb\xbf"

// Spelling 1 (hot path): the separator between "Bearer" and the token is a
// byte the filter does not take for whitespace but the app does. Node hands
// header bytes over as latin1, so 0xA0 is U+00A0, which JavaScript's \s
// matches: Strapi's users-permissions getToken (`authorization.split(/\s+/)`),
// the magic session manager's extractBearerToken (/^\s*Bearer\s+(\S+)\s*$/i)
// and passport-jwt's fromAuthHeaderAsBearerToken all read the token. The
// filter's bearer() takes the value for another scheme and ignores it: the
// revoked token passes unchecked (and no identity is injected, so apps that
// trust x-user-id aside, the app authenticates the revoked session itself).
// \v and \f are \s in JavaScript and spaces to Go's strings.Fields.
func TestSpellingBearerUnicodeSpaceSeparator(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		tok := userToken(31, "s-31")
		h := startedWith(t, start, testConfig(""),
			protocol.Change{Op: protocol.OpRevoke, Key: "sid:s-31", Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
		refusedAs(t, h, get("/api/articles", bearer(tok), -1), 401, protocol.ReasonManual, "control: plain bearer is refused")
		for _, tc := range []struct{ name, auth string }{
			{"NBSP (0xA0) separator: Strapi split(/\\s+/), magic-sessionmanager, passport-jwt", "Bearer\xa0" + tok},
			{"control (refused today): NBSP after a space", "Bearer \xa0" + tok},
			{"VT (0x0B) separator: JS \\s, Go strings.Fields", "Bearer\x0b" + tok},
			{"FF (0x0C) separator: JS \\s, Go strings.Fields", "Bearer\x0c" + tok},
		} {
			r := h.do(t, get("/api/articles", [][2]string{{"authorization", tc.auth}}, -1))
			assert.True(t, r.refused(), "%s: the revoked token reached the app", tc.name)
		}
	})
}

// Spelling 1b (logout observed wrongly): the same spelling on the logout
// route. The app logs the session out, the filter sees no token: nothing is
// revoked at sessionsvc or on the proxy, so the access token stays valid at
// every proxy (and the session stays listed as active).
func TestSpellingLogoutWithUnicodeSpaceIsNotRevoked(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		tok := userToken(32, "s-32")
		r := h.do(t, request{method: "POST", path: "/api/auth/logout", headers: [][2]string{{"authorization", "Bearer\xa0" + tok}}, worker: -1})
		require.False(t, r.local)
		assert.Len(t, stub.recorded().revoke, 1, "the app logged out with this token: the filter must revoke it (or refuse the request)")
	})
}

// refreshOfRevoked starts a harness on cfg in which the refresh token
// "rt-old" is revoked, and returns a check that a refresh request is
// refused without reaching the app, and answers the response.
func refreshOfRevoked(t *testing.T, start func(string, map[string]string) (harness, error), cfg string) func(t *testing.T, name, path string, hdrs [][2]string, body []byte) response {
	t.Helper()
	h, stub := startStubbed(t, start, cfg)
	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: token.FingerprintKey("rt-old"), Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonManual})
	h.tickAll(t)
	h.tickAll(t)
	var reached atomic.Int64
	app := countingApp(&reached, 200)
	return func(t *testing.T, name, path string, hdrs [][2]string, body []byte) response {
		t.Helper()
		before := reached.Load()
		r := h.do(t, request{method: "POST", path: path, headers: hdrs, worker: -1, body: body, app: app})
		require.True(t, r.local, "%s: refresh with the revoked token reached the app", name)
		assert.True(t, r.refused(), "%s: not refused: %d", name, r.status)
		assert.Equal(t, before, reached.Load(), "%s: the app saw it", name)
		return r
	}
}

// Spelling 3 (refresh route): bodies koa-body hands the app with
// refreshToken = the revoked token, in which the filter finds no token (so
// it lets the refresh through, unchecked):
//   - co-body (koa-body's urlencoded and JSON parser) inflates gzip and
//     deflate request bodies (`inflate(req)`) and decodes with iconv-lite,
//     which strips a UTF-8 BOM; the filter reads the raw bytes;
//   - co-body parses forms with qs and allowDots: `[refreshToken]=t` and
//     `.refreshToken=t` are body.refreshToken (a key with no parent); the
//     filter only looks for `refreshToken` and `refreshToken` in bracket form;
//   - formidable (koa-body's multipart parser) takes a part as a field when
//     it has no Content-Type, whatever its filename; reads its name from any
//     Content-Disposition (not only form-data); and decodes
//     Content-Transfer-Encoding: base64. Go's multipart reader (the filter)
//     skips the first two and reads the third as its base64 text.
func TestSpellingRefreshBodyParserMismatch(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		refused := refreshOfRevoked(t, start, testConfig(""))
		const form, multi = "application/x-www-form-urlencoded", "multipart/form-data; boundary=B"
		for _, tc := range []struct {
			name string
			hdrs [][2]string
			body []byte
		}{
			{"form, gzip content-encoding (co-body inflates)", [][2]string{{"content-type", form}, {"content-encoding", "gzip"}}, gzipped("refreshToken=rt-old")},
			{"form, UTF-8 BOM (iconv-lite strips it)", [][2]string{{"content-type", form}}, []byte(bom + "refreshToken=rt-old")},
			{"form, key [refreshToken] (qs: no parent)", [][2]string{{"content-type", form}}, []byte("[refreshToken]=rt-old")},
			{"form, key %5BrefreshToken%5D (qs decodes, then no parent)", [][2]string{{"content-type", form}}, []byte("%5BrefreshToken%5D=rt-old")},
			{"form, key .refreshToken (qs allowDots, co-body's default)", [][2]string{{"content-type", form}}, []byte(".refreshToken=rt-old")},
			{"multipart, part with filename and no Content-Type (formidable: a field)", [][2]string{{"content-type", multi}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"refreshToken\"; filename=\"x\"\r\n\r\nrt-old\r\n--B--\r\n")},
			{"multipart, Content-Disposition attachment (formidable reads name=)", [][2]string{{"content-type", multi}},
				[]byte("--B\r\nContent-Disposition: attachment; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n")},
			{"multipart, Content-Transfer-Encoding base64 (formidable decodes)", [][2]string{{"content-type", multi}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\nContent-Transfer-Encoding: base64\r\n\r\ncnQtb2xk\r\n--B--\r\n")},
			{"multipart, name parameter twice (Go: unparsable disposition, no name; formidable: the first)", [][2]string{{"content-type", multi}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"refreshToken\"; name=\"x\"\r\n\r\nrt-old\r\n--B--\r\n")},
			{"multipart, Content-Disposition twice (Go: the first; formidable: the last)", [][2]string{{"content-type", multi}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n")},
			{"multipart, xboundary=Z before boundary=B (formidable's unanchored /boundary=/ takes Z)",
				[][2]string{{"content-type", "multipart/form-data; xboundary=Z; boundary=B"}},
				[]byte("--Z\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--Z--\r\n--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--B--\r\n")},
		} {
			refused(t, tc.name, "/api/auth/refresh", tc.hdrs, tc.body)
		}
	})
}

// Spelling 4 (refresh route, request_token_cookie set as Strapi v5's
// sessions use it: strapi_up_refresh): a body the filter cannot read is
// tolerated "because the token may come from the cookie" — but Strapi's
// magic session manager (getIncomingRefreshToken) and users-permissions
// read the BODY first. A gzip-compressed JSON body, or one with a UTF-8 BOM,
// carries the revoked refresh token to the app unchecked (no cookie needed).
func TestSpellingRefreshUnreadableBodyToleratedWithCookieSource(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		refused := refreshOfRevoked(t, start, testConfig(`"refresh":{"request_token_cookie":"strapi_up_refresh"}`))
		const js = "application/json"
		for _, tc := range []struct {
			name string
			hdrs [][2]string
			body []byte
		}{
			{"control: plain JSON", [][2]string{{"content-type", js}}, []byte(`{"refreshToken":"rt-old"}`)},
			{"JSON, gzip content-encoding (co-body inflates)", [][2]string{{"content-type", js}, {"content-encoding", "gzip"}}, gzipped(`{"refreshToken":"rt-old"}`)},
			{"JSON, UTF-8 BOM (iconv-lite strips it)", [][2]string{{"content-type", js}}, []byte(bom + `{"refreshToken":"rt-old"}`)},
			{"JSON, gzip, with a valid decoy cookie", [][2]string{{"content-type", js}, {"content-encoding", "gzip"}, {"cookie", "strapi_up_refresh=decoy"}}, gzipped(`{"refreshToken":"rt-old"}`)},
			{"multipart/mixed (koa-body: ctx.is('multipart') is multipart/*; filter: not multipart, so JSON)", [][2]string{{"content-type", "multipart/mixed; boundary=B"}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n")},
			{"multipart/form-data with boundary twice (Go: duplicate parameter, error; formidable: the first)", [][2]string{{"content-type", "multipart/form-data; boundary=B; boundary=C"}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\nrt-old\r\n--B--\r\n")},
		} {
			refused(t, tc.name, "/api/auth/refresh", tc.hdrs, tc.body)
		}
	})
}

// Spelling 5 (login observed wrongly: lockout evasion): the pre-login check
// and the failed-login report count the identifier the filter reads; the
// same encodings as spelling 3 hide it (the filter reads "", one shared
// counter) while Strapi logs in as the victim: an attacker brute-forcing
// "victim" is never locked out per identifier, and sessionsvc's per-account
// lockout and alerts never see the account.
func TestSpellingLoginIdentifierHidden(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		var reached atomic.Int64
		const form, js = "application/x-www-form-urlencoded", "application/json"
		for _, tc := range []struct {
			name string
			hdrs [][2]string
			body []byte
		}{
			{"form, UTF-8 BOM", [][2]string{{"content-type", form}}, []byte(bom + "identifier=victim&password=guess")},
			{"form, key [identifier]", [][2]string{{"content-type", form}}, []byte("[identifier]=victim&password=guess")},
			{"form, key .identifier", [][2]string{{"content-type", form}}, []byte(".identifier=victim&password=guess")},
			{"JSON, UTF-8 BOM", [][2]string{{"content-type", js}}, []byte(bom + `{"identifier":"victim","password":"guess"}`)},
			{"multipart, part with filename and no Content-Type", [][2]string{{"content-type", "multipart/form-data; boundary=B"}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"identifier\"; filename=\"x\"\r\n\r\nvictim\r\n--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nguess\r\n--B--\r\n")},
			{"multipart/mixed", [][2]string{{"content-type", "multipart/mixed; boundary=B"}},
				[]byte("--B\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nvictim\r\n--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nguess\r\n--B--\r\n")},
		} {
			n := len(stub.recorded().checks)
			req := request{method: "POST", path: "/api/auth/local", worker: -1, app: countingApp(&reached, 400),
				headers: append([][2]string{{"user-agent", "TestAgent/1.0"}}, tc.hdrs...), body: tc.body}
			h.do(t, req)
			rec := stub.recorded()
			if assert.Len(t, rec.checks, n+1, tc.name) {
				assert.Equal(t, "victim", rec.checks[n].Identifier, "%s: the login check counted another name than the app checks", tc.name)
			}
		}
		// A compressed body (co-body inflates it) is refused before any check.
		n := len(stub.recorded().checks)
		before := reached.Load()
		r := h.do(t, request{method: "POST", path: "/api/auth/local", worker: -1, app: countingApp(&reached, 400),
			headers: [][2]string{{"content-type", js}, {"content-encoding", "gzip"}}, body: gzipped(`{"identifier":"victim","password":"guess"}`)})
		require.True(t, r.local)
		assert.Equal(t, 415, r.status)
		assert.Len(t, stub.recorded().checks, n)
		assert.Equal(t, before, reached.Load())
	})
}

// Spelling 6 (revoking route observed wrongly, timing only): revoking_routes
// are matched by exact, case-sensitive prefix on the raw path, unlike the
// login/refresh/logout routes. sessionsvc serves the user API with Go's
// ServeMux, which matches the percent-decoded path: `logout-%61ll` is
// logout-all there. Its 2xx answer then goes out without the hold, and the
// revoked token still passes on the other workers until the next sync
// (bounded: <100 ms pushed, <1 s polled), breaking "at once on the proxy
// that saw it".
func TestSpellingRevokingRouteEncodedLetterNotHeld(t *testing.T) {
	const u = "/api/magic-sessionmanager"
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		for i, rt := range []struct{ method, path string }{
			{"POST", u + "/logout-%61ll"},
			{"POST", u + "/%6cogout"},
			{"DELETE", u + "/my-%73essions/victim"},
		} {
			caller := userToken(91, "caller-enc-"+strconv.Itoa(i))
			victim := userToken(91, "victim-enc-"+strconv.Itoa(i))
			everyWorkerPasses(t, h, victim)
			r := h.do(t, request{method: rt.method, path: rt.path, headers: bearer(caller), worker: 0,
				app: func([][2]string, []byte) (int, [][2]string, []byte) {
					stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:victim-enc-" + strconv.Itoa(i), Exp: time.Now().Add(time.Hour).Unix(), Reason: protocol.ReasonLogout})
					return 200, [][2]string{{"content-type", "application/json"}}, []byte(`{"data":{"success":true}}`)
				}})
			require.Equal(t, 200, r.status)
			for w := 0; w < h.workers(); w++ {
				r := h.do(t, get("/api/x", bearer(victim), w))
				assert.True(t, r.local, "%s %s: worker %d still accepts the token the answered call revoked", rt.method, rt.path, w)
			}
		}
	})
}
