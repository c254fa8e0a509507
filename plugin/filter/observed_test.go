package filter_test

// A third probe: the logout route and the response side of the login and
// refresh routes. Each test failed before its fix.

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

const refreshCookie = "strapi_up_refresh"

func jsonAnswer(status int, body string, extra ...[2]string) func([][2]string, []byte) (int, [][2]string, []byte) {
	return func([][2]string, []byte) (int, [][2]string, []byte) {
		return status, append([][2]string{{"content-type", "application/json"}}, extra...), []byte(body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Probe 3.1 (logout refused as expired, session survives): the magic
// session manager's /api/auth/logout accepts an access token whose exp
// passed (it re-verifies with ignoreExpiration) and ends its session, refresh
// token included. With enforce_expiry (the default) the filter answers such
// a logout 401 expired itself: the app never sees it, nothing is revoked at
// sessionsvc, and the session's refresh token keeps minting access tokens.
// A client whose access token expired (an idle tab) cannot log out.
func TestLogoutWithExpiredAccessTokenEndsTheSession(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		now := time.Now().Unix()
		expired := jwt(map[string]any{"id": 41, "sid": "s-exp-41", "iat": now - 7200, "exp": now - 3600})
		var reached atomic.Int64
		r := h.do(t, request{method: "POST", path: "/api/auth/logout", headers: bearer(expired), worker: -1,
			app: func([][2]string, []byte) (int, [][2]string, []byte) {
				reached.Add(1)
				return 200, [][2]string{{"content-type", "application/json"}}, []byte(`{"ok":true,"message":"Logged out successfully"}`)
			}})
		rec := stub.recorded()
		ended := reached.Load() == 1 || len(rec.revoke) == 1
		assert.True(t, ended, "a logout with an expired (validly signed) access token neither reached the app (%d, answered %d local=%v) nor revoked the session at sessionsvc (%v)",
			reached.Load(), r.status, r.local, rec.revoke)
	})
}

// Probe 3.2 (login registered wrongly: refresh token in a cookie): Strapi
// v5's users-permissions in cookie mode (and the magic session manager's
// getOutgoingRefreshToken) hand the refresh token out as the httpOnly cookie
// strapi_up_refresh, not in the body. The filter reads the login answer's
// body only: the session is registered without its refresh key, so
// sessionsvc can never mark it rotated (its refresh() rotates kind=refresh
// keys only): reuse of a rotated refresh token is never detected, and
// ending the session does not revoke an opaque refresh token.
func TestLoginRefreshTokenInSetCookieRegistered(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"refresh":{"request_token_cookie":"`+refreshCookie+`"}`))
		h.tickAll(t)
		tok := userToken(42, "s-42")
		r := h.do(t, request{method: "POST", path: "/api/auth/local", worker: -1,
			headers: [][2]string{{"content-type", "application/json"}},
			body:    []byte(`{"identifier":"alice","password":"pw"}`),
			app: jsonAnswer(200, mustJSON(map[string]any{"jwt": tok, "user": map[string]any{"id": 42}}),
				[2]string{"set-cookie", refreshCookie + "=rt-cookie-42; Path=/; HttpOnly; SameSite=Lax"})})
		require.False(t, r.refused(), "%s", r.body)
		rec := stub.recorded()
		require.Len(t, rec.register, 1)
		assert.Equal(t, []string{token.FingerprintKey("rt-cookie-42")}, rec.register[0].RefreshKeys,
			"the refresh token the app set as %s is not registered with the session", refreshCookie)
	})
}

// Probe 3.3 (refresh registered wrongly: rotated refresh token in a
// cookie): the same on the refresh route. The refresh presents rt-1 in the
// cookie (request_token_cookie), the app rotates it and sets rt-2 in the
// cookie: the report carries no refresh key, so rt-2 is unknown to
// sessionsvc; presented later it is "a session sessionsvc never saw"
// (allowed, nothing rotated, nothing attached): reuse detection and the
// keys of every later token of the session are lost from then on.
func TestRefreshRotatedTokenInSetCookieReported(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"refresh":{"request_token_cookie":"`+refreshCookie+`"}`))
		h.tickAll(t)
		next := userToken(43, "s-43")
		r := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: -1,
			headers: [][2]string{{"cookie", refreshCookie + "=rt-cookie-1"}},
			app: jsonAnswer(200, mustJSON(map[string]any{"jwt": next}),
				[2]string{"set-cookie", refreshCookie + "=rt-cookie-2; Path=/; HttpOnly"})})
		require.False(t, r.refused(), "%s", r.body)
		rec := stub.recorded()
		require.Len(t, rec.refresh, 1)
		assert.Equal(t, []string{token.FingerprintKey("rt-cookie-1")}, rec.refresh[0].PresentedKeys)
		assert.Equal(t, []string{token.FingerprintKey("rt-cookie-2")}, rec.refresh[0].RefreshKeys,
			"the rotated refresh token the app set as %s is not reported", refreshCookie)
	})
}

// Probe 3.4 (answer read unlike the client reads it): a login or refresh
// answer naming jwt / refreshToken twice. The client's JSON.parse keeps the
// last; gjson (ParseLogin, ParseRefresh) the first, so the session is
// registered under a token the client never uses and the one it uses is
// unknown to sessionsvc. (Needs an app that writes the key twice; the
// request side already reads repeated keys as JSON.parse.)
func TestAnswerWithRepeatedTokenKeyReadAsTheClient(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		first, last := userToken(44, "s-44-first"), userToken(44, "s-44-last")
		r := h.do(t, request{method: "POST", path: "/api/auth/local", worker: -1,
			headers: [][2]string{{"content-type", "application/json"}},
			body:    []byte(`{"identifier":"alice","password":"pw"}`),
			app:     jsonAnswer(200, `{"jwt":"`+first+`","refreshToken":"rt-first","jwt":"`+last+`","refreshToken":"rt-last","user":{"id":44}}`)})
		if !r.refused() {
			rec := stub.recorded()
			require.Len(t, rec.register, 1)
			assert.Contains(t, rec.register[0].Keys, "sid:s-44-last", "login: registered the first jwt, the client uses the last")
			assert.Equal(t, []string{token.FingerprintKey("rt-last")}, rec.register[0].RefreshKeys, "login: the first refreshToken registered")
		}
		r = h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: -1,
			headers: [][2]string{{"content-type", "application/json"}},
			body:    []byte(`{"refreshToken":"rt-last"}`),
			app:     jsonAnswer(200, `{"jwt":"`+first+`","refreshToken":"rt-2a","jwt":"`+last+`","refreshToken":"rt-2b"}`)})
		if !r.refused() {
			rec := stub.recorded()
			require.Len(t, rec.refresh, 1)
			assert.Contains(t, rec.refresh[0].Keys, "sid:s-44-last", "refresh: reported the first jwt, the client uses the last")
			assert.Equal(t, []string{token.FingerprintKey("rt-2b")}, rec.refresh[0].RefreshKeys, "refresh: the first refreshToken reported")
		}
	})
}

// Probe 3.5 (2xx refresh answer the filter cannot read): the login route
// refuses (or asks sessionsvc about) a 2xx answer whose token it cannot
// read; the refresh route lets it go to the client and reports the refresh
// with no new keys: sessionsvc rotates the presented refresh token and ties
// nothing to the session, so the new refresh token and access token (an
// fp-only one, as Strapi v4 issues) outlive the session's end.
func TestRefreshAnswerWithBOMRead(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(""))
		h.tickAll(t)
		next := jwt(map[string]any{"id": 45, "iat": time.Now().Unix(), "exp": time.Now().Unix() + 3600})
		good := mustJSON(map[string]any{"jwt": next, "refreshToken": "rt-45-new"})
		for i, tc := range []struct {
			name string
			app  func([][2]string, []byte) (int, [][2]string, []byte)
		}{
			{"UTF-8 BOM (fetch's json() and JSON.parse via TextDecoder strip it)", jsonAnswer(200, bom+good)},
		} {
			n := len(stub.recorded().refresh)
			r := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: -1,
				headers: [][2]string{{"content-type", "application/json"}},
				body:    []byte(`{"refreshToken":"rt-45-` + string(rune('a'+i)) + `"}`),
				app:     tc.app})
			rec := stub.recorded()
			reported := len(rec.refresh) > n && len(rec.refresh[n].Keys) > 0
			assert.True(t, r.refused() || reported, "%s: a 2xx refresh answer whose tokens the filter cannot read went to the client unregistered", tc.name)
		}
	})
}

// Probe 3.6 (logout while sessionsvc is down, then a refresh on another
// worker): the logout carries the session's refresh token too (Strapi v5
// sends the strapi_up_refresh cookie; the magic session manager reads
// refreshToken from the body or that cookie and ends the session it names),
// but the filter enforces only the access token's keys locally: the opaque
// refresh token passes the filter on every worker of the proxy while
// sessionsvc is down. (Documented as a limitation; the app's own logout is
// what refuses it then.)
func TestLogoutWhileDownRevokesTheRefreshCookie(t *testing.T) {
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h, stub := startStubbed(t, start, testConfig(`"refresh":{"request_token_cookie":"`+refreshCookie+`"}`))
		h.tickAll(t)
		tok := userToken(46, "s-46")
		const rt = "rt-opaque-46"
		stub.set(func(s *stubSvc) { s.down = true })
		r := h.do(t, request{method: "POST", path: "/api/auth/logout", worker: 0,
			headers: append(bearer(tok), [2]string{"cookie", refreshCookie + "=" + rt}, [2]string{"content-type", "application/json"}),
			body:    []byte(`{"refreshToken":"` + rt + `"}`),
			app:     jsonAnswer(200, `{"ok":true}`)})
		require.False(t, r.local)
		everyWorkerRefuses(t, h, tok, protocol.ReasonLogout, "logged out while down")
		var reached atomic.Int64
		for w := 0; w < h.workers(); w++ {
			r := h.do(t, request{method: "POST", path: "/api/auth/refresh", worker: w,
				headers: [][2]string{{"cookie", refreshCookie + "=" + rt}},
				app: func(hd [][2]string, b []byte) (int, [][2]string, []byte) {
					reached.Add(1)
					return jsonAnswer(200, mustJSON(map[string]any{"jwt": userToken(46, "s-46-next")}))(hd, b)
				}})
			assert.True(t, r.refused(), "worker %d: the refresh token the logout presented refreshes the logged-out session", w)
		}
		assert.Zero(t, reached.Load())
	})
}
