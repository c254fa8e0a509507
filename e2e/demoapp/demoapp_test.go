package demoapp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/demoapp"
	"github.com/meshsession/meshsession/internal/strapi"
	"github.com/meshsession/meshsession/internal/testenv"
)

const testSecret = "test-secret"

func newApp(t *testing.T, sid bool) (*demoapp.App, *testenv.Clock) {
	t.Helper()
	clk := testenv.NewClock(time.Now().Truncate(time.Second))
	return demoapp.New(demoapp.Config{
		Secret:     testSecret,
		TokenTTL:   10 * time.Minute,
		RefreshTTL: time.Hour,
		SIDClaim:   sid,
		Now:        clk.Now,
	}), clk
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func header(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func do(t testing.TB, h http.Handler, method, path, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), "body: %s", w.Body.String())
	return v
}

func login(t testing.TB, h http.Handler, user string) demoapp.AuthResponse {
	t.Helper()
	w := do(t, h, http.MethodPost, "/api/auth/local", fmt.Sprintf(`{"identifier":%q,"password":%q}`, user, user+"-password"))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return decode[demoapp.AuthResponse](t, w)
}

// claims decodes a token's claims without verifying it.
func claims(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(tok, c)
	require.NoError(t, err)
	return c
}

func sign(t *testing.T, secret string, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	require.NoError(t, err)
	return tok
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		body        string
		wantStatus  int
		wantName    string
		wantMessage string
	}{
		{name: "username", body: `{"identifier":"alice","password":"alice-password"}`, wantStatus: 200},
		{name: "email any case", body: `{"identifier":"Bob@Example.com","password":"bob-password"}`, wantStatus: 200},
		{name: "wrong password", body: `{"identifier":"alice","password":"bob-password"}`, wantStatus: 400,
			wantName: "ValidationError", wantMessage: "Invalid identifier or password"},
		{name: "unknown user", body: `{"identifier":"mallory","password":"x"}`, wantStatus: 400,
			wantName: "ValidationError", wantMessage: "Invalid identifier or password"},
		{name: "password case matters", body: `{"identifier":"alice","password":"ALICE-PASSWORD"}`, wantStatus: 400,
			wantName: "ValidationError", wantMessage: "Invalid identifier or password"},
		{name: "missing password", body: `{"identifier":"alice"}`, wantStatus: 400,
			wantName: "ValidationError", wantMessage: "password is a required field"},
		{name: "missing both", body: `{}`, wantStatus: 400, wantName: "ValidationError", wantMessage: "2 errors occurred"},
		{name: "empty body", body: ``, wantStatus: 400, wantName: "ValidationError", wantMessage: "2 errors occurred"},
		{name: "malformed json", body: `{"identifier":"alice",`, wantStatus: 400, wantName: "BadRequestError", wantMessage: "Invalid JSON body"},
		{name: "not an object", body: `[1,2]`, wantStatus: 400, wantName: "BadRequestError", wantMessage: "Invalid JSON body"},
		{name: "trailing data", body: `{"identifier":"alice","password":"alice-password"} {}`, wantStatus: 400,
			wantName: "BadRequestError", wantMessage: "Invalid JSON body"},
		{name: "identifier not a string", body: `{"identifier":42,"password":"x"}`, wantStatus: 400,
			wantName: "ValidationError", wantMessage: "identifier must be a `string` type"},
		{name: "too large", body: `{"identifier":"` + strings.Repeat("a", 2<<20) + `"}`, wantStatus: 413, wantName: "PayloadTooLargeError"},
		{name: "wrong method", method: http.MethodGet, wantStatus: 405, wantName: "MethodNotAllowedError"},
	}
	for _, sid := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("sid=%v/%s", sid, tt.name), func(t *testing.T) {
				app, clk := newApp(t, sid)
				method := tt.method
				if method == "" {
					method = http.MethodPost
				}
				w := do(t, app, method, "/api/auth/local", tt.body)
				require.Equal(t, tt.wantStatus, w.Code, w.Body.String())
				assert.Contains(t, w.Header().Get("Content-Type"), "application/json")
				if tt.wantStatus != http.StatusOK {
					e := assertError(t, w, tt.wantStatus, tt.wantName, tt.wantMessage)
					assert.NotNil(t, e.Error.Details)
					if tt.wantStatus == http.StatusMethodNotAllowed {
						assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
					}
					return
				}
				resp := decode[demoapp.AuthResponse](t, w)
				require.NotEmpty(t, resp.JWT)
				require.NotEmpty(t, resp.RefreshToken)
				require.NotNil(t, resp.User)
				assert.NotEqual(t, resp.JWT, resp.RefreshToken)
				c := claims(t, resp.JWT)
				id, ok := c["id"].(float64)
				require.True(t, ok, "id claim must be a number: %#v", c["id"])
				assert.Equal(t, float64(resp.User.ID), id)
				assert.Equal(t, fmt.Sprint(resp.User.ID), c["sub"])
				assert.Equal(t, float64(clk.Now().Unix()), c["iat"])
				assert.Equal(t, float64(clk.Now().Add(10*time.Minute).Unix()), c["exp"])
				_, hasSID := c["sid"]
				assert.Equal(t, sid, hasSID)
				assert.NotContains(t, c, "jti", "a jti would act as a per-token session claim")
				assert.Equal(t, "local", resp.User.Provider)
				assert.Contains(t, resp.User.Email, "@example.com")
			})
		}
	}
}

func TestLoginTokensAreDistinct(t *testing.T) {
	app, _ := newApp(t, false)
	a := login(t, app, "alice")
	b := login(t, app, "alice")
	assert.NotEqual(t, a.JWT, b.JWT, "two logins in the same second must yield different tokens")
	assert.NotEqual(t, a.RefreshToken, b.RefreshToken)

	app, _ = newApp(t, true)
	a = login(t, app, "alice")
	b = login(t, app, "alice")
	assert.NotEqual(t, claims(t, a.JWT)["sid"], claims(t, b.JWT)["sid"], "each login is a new session")
}

func TestRefresh(t *testing.T) {
	for _, sid := range []bool{true, false} {
		t.Run(fmt.Sprintf("sid=%v", sid), func(t *testing.T) {
			app, clk := newApp(t, sid)
			first := login(t, app, "alice")

			w := do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+first.RefreshToken+`"}`)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			second := decode[demoapp.AuthResponse](t, w)
			require.NotEmpty(t, second.JWT)
			require.NotEmpty(t, second.RefreshToken)
			assert.NotEqual(t, first.RefreshToken, second.RefreshToken, "refresh tokens rotate")
			assert.NotEqual(t, first.JWT, second.JWT)
			assert.Equal(t, claims(t, first.JWT)["sid"], claims(t, second.JWT)["sid"], "the session id survives a refresh")
			assert.Equal(t, float64(1), claims(t, second.JWT)["id"])

			// The rotated token is refused; the new one works once.
			w = do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+first.RefreshToken+`"}`)
			assertError(t, w, http.StatusUnauthorized, "UnauthorizedError", "Invalid refresh token")
			w = do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+second.RefreshToken+`"}`)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			third := decode[demoapp.AuthResponse](t, w)

			// Expired refresh token.
			clk.Add(time.Hour)
			w = do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+third.RefreshToken+`"}`)
			assertError(t, w, http.StatusUnauthorized, "UnauthorizedError", "Invalid refresh token")
		})
	}
}

func TestRefreshBadInput(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantName   string
		wantMsg    string
	}{
		{"missing token", `{}`, 400, "ValidationError", "refreshToken is a required field"},
		{"empty token", `{"refreshToken":""}`, 400, "ValidationError", "refreshToken is a required field"},
		{"token not a string", `{"refreshToken":123}`, 400, "ValidationError", "refreshToken must be a `string` type"},
		{"malformed json", `{"refreshToken":`, 400, "BadRequestError", "Invalid JSON body"},
		{"unknown token", `{"refreshToken":"nope"}`, 401, "UnauthorizedError", "Invalid refresh token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, _ := newApp(t, true)
			login(t, app, "alice")
			w := do(t, app, http.MethodPost, "/api/auth/refresh", tt.body)
			assertError(t, w, tt.wantStatus, tt.wantName, tt.wantMsg)
		})
	}
}

// assertError checks that w is a Strapi error of status and name, with msg
// when msg is set, and returns its envelope.
func assertError(t *testing.T, w *httptest.ResponseRecorder, status int, name, msg string) strapi.ErrorEnvelope {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	e := decode[strapi.ErrorEnvelope](t, w)
	assert.Nil(t, e.Data)
	assert.Equal(t, status, e.Error.Status)
	assert.Equal(t, name, e.Error.Name)
	if msg != "" {
		assert.Equal(t, msg, e.Error.Message)
	}
	return e
}

func TestProtected(t *testing.T) {
	app, clk := newApp(t, true)
	alice := login(t, app, "alice")
	now := clk.Now()

	tests := []struct {
		name       string
		path       string
		opts       []reqOpt
		wantStatus int
		wantName   string
	}{
		{name: "articles", path: "/api/articles", opts: []reqOpt{bearer(alice.JWT)}, wantStatus: 200},
		{name: "me", path: "/api/users/me", opts: []reqOpt{bearer(alice.JWT)}, wantStatus: 200},
		{name: "one article", path: "/api/articles/2", opts: []reqOpt{bearer(alice.JWT)}, wantStatus: 200},
		{name: "unknown article", path: "/api/articles/99", opts: []reqOpt{bearer(alice.JWT)}, wantStatus: 404, wantName: "NotFoundError"},
		{name: "cookie", path: "/api/articles", opts: []reqOpt{header("Cookie", "jwt="+alice.JWT)}, wantStatus: 200},
		{name: "lower-case bearer", path: "/api/articles", opts: []reqOpt{header("Authorization", "bearer "+alice.JWT)}, wantStatus: 200},
		{name: "no token", path: "/api/articles", wantStatus: 403, wantName: "ForbiddenError"},
		{name: "basic auth", path: "/api/articles", opts: []reqOpt{header("Authorization", "Basic YTpi")}, wantStatus: 403, wantName: "ForbiddenError"},
		{name: "garbage token", path: "/api/articles", opts: []reqOpt{bearer("not.a.jwt")}, wantStatus: 401, wantName: "UnauthorizedError"},
		{name: "refresh token as access token", path: "/api/articles", opts: []reqOpt{bearer(alice.RefreshToken)}, wantStatus: 401, wantName: "UnauthorizedError"},
		{name: "forged signature", path: "/api/articles", wantStatus: 401, wantName: "UnauthorizedError", opts: []reqOpt{bearer(sign(t, "other-secret",
			jwt.MapClaims{"id": 1, "sub": "1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}))}},
		{name: "unknown user", path: "/api/articles", wantStatus: 401, wantName: "UnauthorizedError", opts: []reqOpt{bearer(sign(t, testSecret,
			jwt.MapClaims{"id": 99, "sub": "99", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}))}},
		{name: "sub disagrees with id", path: "/api/articles", wantStatus: 401, wantName: "UnauthorizedError", opts: []reqOpt{bearer(sign(t, testSecret,
			jwt.MapClaims{"id": 1, "sub": "2", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}))}},
		{name: "no exp", path: "/api/articles", wantStatus: 401, wantName: "UnauthorizedError", opts: []reqOpt{bearer(sign(t, testSecret,
			jwt.MapClaims{"id": 1, "sub": "1", "iat": now.Unix()}))}},
		{name: "expired", path: "/api/articles", wantStatus: 401, wantName: "UnauthorizedError", opts: []reqOpt{bearer(sign(t, testSecret,
			jwt.MapClaims{"id": 1, "sub": "1", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Second).Unix()}))}},
		{name: "alg none", path: "/api/articles", wantStatus: 401, wantName: "UnauthorizedError", opts: []reqOpt{bearer(noneToken(t, now))}},
		{name: "wrong method", path: "/api/articles", wantStatus: 405, wantName: "MethodNotAllowedError"},
		{name: "unknown api path", path: "/api/nothing", wantStatus: 404, wantName: "NotFoundError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.wantStatus == http.StatusMethodNotAllowed {
				method = http.MethodDelete
			}
			opts := append([]reqOpt{header("x-session-id", "sess-1"), header("x-user-id", "1")}, tt.opts...)
			w := do(t, app, method, tt.path, "", opts...)
			if tt.wantStatus != http.StatusOK {
				assertError(t, w, tt.wantStatus, tt.wantName, "")
				return
			}
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Equal(t, "sess-1", w.Header().Get(demoapp.HeaderEchoSessionID))
			assert.Equal(t, "1", w.Header().Get(demoapp.HeaderEchoUserID))
		})
	}
}

func noneToken(t *testing.T, now time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"id": 1, "sub": "1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	return tok
}

func TestArticlesEchoIdentity(t *testing.T) {
	for _, sid := range []bool{true, false} {
		t.Run(fmt.Sprintf("sid=%v", sid), func(t *testing.T) {
			app, _ := newApp(t, sid)
			bob := login(t, app, "bob")
			w := do(t, app, http.MethodGet, "/api/articles", "", bearer(bob.JWT),
				header("x-session-id", "s-42"), header("x-user-id", "2"))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			resp := decode[demoapp.ArticlesResponse](t, w)
			assert.Len(t, resp.Data, 3)
			assert.Equal(t, 3, resp.Meta.Pagination.Total)
			assert.Equal(t, "s-42", resp.Meta.Identity.SessionID)
			assert.Equal(t, "2", resp.Meta.Identity.UserID)
			assert.Equal(t, int64(2), resp.Meta.Identity.TokenUserID)
			if sid {
				assert.Equal(t, claims(t, bob.JWT)["sid"], resp.Meta.Identity.TokenSessionID)
			} else {
				assert.Empty(t, resp.Meta.Identity.TokenSessionID)
			}

			// Without identity headers the echo is empty, not invented.
			w = do(t, app, http.MethodGet, "/api/users/me", "", bearer(bob.JWT))
			require.Equal(t, http.StatusOK, w.Code)
			assert.Empty(t, w.Header().Get(demoapp.HeaderEchoSessionID))
			me := decode[demoapp.UserJSON](t, w)
			assert.Equal(t, "bob", me.Username)
		})
	}
}

func TestExpiredAccessToken(t *testing.T) {
	app, clk := newApp(t, false)
	alice := login(t, app, "alice")
	require.Equal(t, http.StatusOK, do(t, app, http.MethodGet, "/api/articles", "", bearer(alice.JWT)).Code)
	clk.Add(10*time.Minute + time.Second)
	assertError(t, do(t, app, http.MethodGet, "/api/articles", "", bearer(alice.JWT)),
		http.StatusUnauthorized, "UnauthorizedError", "Missing or invalid credentials")
}

func TestLogout(t *testing.T) {
	for _, sid := range []bool{true, false} {
		t.Run(fmt.Sprintf("sid=%v", sid), func(t *testing.T) {
			app, _ := newApp(t, sid)
			phone := login(t, app, "alice")
			laptop := login(t, app, "alice")

			w := do(t, app, http.MethodPost, "/api/auth/logout", "", bearer(phone.JWT))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.JSONEq(t, `{"data":{"message":"logged out"}}`, w.Body.String())

			// The phone's session is over: its refresh token no longer works.
			w = do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+phone.RefreshToken+`"}`)
			assertError(t, w, http.StatusUnauthorized, "UnauthorizedError", "Invalid refresh token")
			// The laptop's session is untouched.
			w = do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+laptop.RefreshToken+`"}`)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			// The app itself is stateless about access tokens: the phone's
			// token still passes here. Refusing it is the proxy's job.
			assert.Equal(t, http.StatusOK, do(t, app, http.MethodGet, "/api/articles", "", bearer(phone.JWT)).Code)
		})
	}
}

func TestLogoutAfterRefreshEndsSession(t *testing.T) {
	app, _ := newApp(t, false)
	a := login(t, app, "carol")
	w := do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+a.RefreshToken+`"}`)
	require.Equal(t, http.StatusOK, w.Code)
	b := decode[demoapp.AuthResponse](t, w)
	// Log out with the refreshed access token: the session (known by the
	// token, not by a sid claim) ends.
	require.Equal(t, http.StatusOK, do(t, app, http.MethodPost, "/api/auth/logout", "{}", bearer(b.JWT)).Code)
	w = do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+b.RefreshToken+`"}`)
	assertError(t, w, http.StatusUnauthorized, "UnauthorizedError", "Invalid refresh token")
}

func TestLogoutBadInput(t *testing.T) {
	app, _ := newApp(t, true)
	alice := login(t, app, "alice")
	bob := login(t, app, "bob")
	tests := []struct {
		name       string
		body       string
		opts       []reqOpt
		wantStatus int
		wantName   string
	}{
		{name: "no token", wantStatus: 403, wantName: "ForbiddenError"},
		{name: "forged token", opts: []reqOpt{bearer(alice.JWT + "x")}, wantStatus: 401, wantName: "UnauthorizedError"},
		{name: "malformed body", body: `{"refreshToken":`, opts: []reqOpt{bearer(alice.JWT)}, wantStatus: 400, wantName: "BadRequestError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertError(t, do(t, app, http.MethodPost, "/api/auth/logout", tt.body, tt.opts...), tt.wantStatus, tt.wantName, "")
		})
	}
	// Alice cannot end Bob's session by naming his refresh token.
	require.Equal(t, http.StatusOK, do(t, app, http.MethodPost, "/api/auth/logout",
		`{"refreshToken":"`+bob.RefreshToken+`"}`, bearer(alice.JWT)).Code)
	require.Equal(t, http.StatusOK,
		do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+bob.RefreshToken+`"}`).Code)
}

func TestHealthzAndEcho(t *testing.T) {
	app, _ := newApp(t, true)
	w := do(t, app, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"status":"ok"}`, w.Body.String())

	w = do(t, app, http.MethodGet, "/api/echo", "", header("x-user-id", "7"), bearer("secret-token"))
	require.Equal(t, http.StatusOK, w.Code)
	e := decode[demoapp.EchoResponse](t, w)
	assert.Equal(t, "7", e.Headers["x-user-id"])
	assert.Equal(t, "[redacted]", e.Headers["authorization"])
	assert.NotContains(t, w.Body.String(), "secret-token")
}

func TestDefaults(t *testing.T) {
	app := demoapp.New(demoapp.Config{})
	alice := login(t, app, "alice")
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(alice.JWT, c, func(*jwt.Token) (any, error) { return []byte(demoapp.DefaultSecret), nil })
	require.NoError(t, err, "the default secret signs tokens")
	exp, err := c.GetExpirationTime()
	require.NoError(t, err)
	iat, err := c.GetIssuedAt()
	require.NoError(t, err)
	assert.Equal(t, demoapp.DefaultTokenTTL, exp.Sub(iat.Time))
	assert.NotContains(t, c, "sid", "SIDClaim defaults to off in the library")
}

func TestConcurrentUse(t *testing.T) {
	app, _ := newApp(t, true)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"alice", "bob", "carol"}[i%3]
			tok := login(t, app, user)
			for range 20 {
				w := do(t, app, http.MethodPost, "/api/auth/refresh", `{"refreshToken":"`+tok.RefreshToken+`"}`)
				if !assert.Equal(t, http.StatusOK, w.Code) {
					return
				}
				tok = decode[demoapp.AuthResponse](t, w)
				assert.Equal(t, http.StatusOK, do(t, app, http.MethodGet, "/api/articles", "", bearer(tok.JWT)).Code)
			}
		}()
	}
	wg.Wait()
}

func FuzzAuthEndpoints(f *testing.F) {
	paths := []string{"/api/auth/local", "/api/auth/refresh", "/api/auth/logout"}
	f.Add(uint8(0), `{"identifier":"alice","password":"alice-password"}`)
	f.Add(uint8(1), `{"refreshToken":"abc"}`)
	f.Add(uint8(2), `{"refreshToken":null}`)
	f.Add(uint8(0), `{"identifier":["x"],"password":{}}`)
	app := demoapp.New(demoapp.Config{Secret: testSecret})
	seed := login(f, app, "alice")
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		w := do(t, app, http.MethodPost, path, body, bearer(seed.JWT))
		switch w.Code {
		case 200, 400, 401, 413:
		default:
			t.Fatalf("unexpected status %d for %s %q: %s", w.Code, path, body, w.Body.String())
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", w.Body.String())
		}
	})
}

func BenchmarkLoginAndArticles(b *testing.B) {
	app := demoapp.New(demoapp.Config{Secret: testSecret})
	for b.Loop() {
		tok := login(b, app, "alice")
		if w := do(b, app, http.MethodGet, "/api/articles", "", bearer(tok.JWT)); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
