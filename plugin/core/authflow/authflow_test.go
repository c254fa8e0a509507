package authflow_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

var (
	cfg   = config.Default()
	names = token.ClaimNames{Session: cfg.SessionClaims, User: cfg.UserClaims}
)

func TestParseLogin(t *testing.T) {
	tests := []struct {
		name, body string
		want       authflow.Login
		err        error
	}{
		{"strapi", `{"jwt":"a.b.c","refreshToken":"r1","user":{"id":12,"email":"x@y"}}`, authflow.Login{Token: "a.b.c", RefreshToken: "r1", UserID: "12", Email: "x@y"}, nil},
		{"strapi v5 names", `{"jwt":"t","user":{"id":3,"documentId":"k3j4h5","username":"alice","email":"a@x"}}`,
			authflow.Login{Token: "t", UserID: "3", UserDocumentID: "k3j4h5", Username: "alice", Email: "a@x"}, nil},
		{"names not strings or hostile", `{"jwt":"t","user":{"id":3,"documentId":5,"username":"a\nb","email":{"x":1}}}`,
			authflow.Login{Token: "t", UserID: "3"}, nil},
		{"name too long", `{"jwt":"t","user":{"username":"` + strings.Repeat("n", 321) + `"}}`, authflow.Login{Token: "t"}, nil},
		{"string id", `{"jwt":"t","user":{"id":"u-7"}}`, authflow.Login{Token: "t", UserID: "u-7"}, nil},
		{"no user", `{"jwt":"t"}`, authflow.Login{Token: "t"}, nil},
		{"object id ignored", `{"jwt":"t","user":{"id":{"x":1}},"refreshToken":5}`, authflow.Login{Token: "t"}, nil},
		{"no token", `{"user":{"id":1}}`, authflow.Login{}, authflow.ErrNoToken},
		{"token not string", `{"jwt":123}`, authflow.Login{}, authflow.ErrNoToken},
		{"html", `<html>oops</html>`, authflow.Login{}, authflow.ErrNotJSON},
		{"empty", ``, authflow.Login{}, authflow.ErrNotJSON},
		{"truncated", `{"jwt":"t"`, authflow.Login{}, authflow.ErrNotJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := authflow.ParseLogin([]byte(tc.body), cfg.Login)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, l)
		})
	}
	_, err := authflow.ParseLogin([]byte(`{"jwt":"`+strings.Repeat("a", authflow.MaxBodyLen)+`"}`), cfg.Login)
	assert.ErrorIs(t, err, authflow.ErrTooLarge)
}

func TestPresentedRefreshTokens(t *testing.T) {
	withCookie := cfg.Refresh
	withCookie.RequestTokenCookie = "rt"
	const form, json = "application/x-www-form-urlencoded", "application/json"
	mp := func(parts ...string) string {
		var b strings.Builder
		for i := 0; i+1 < len(parts); i += 2 {
			fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", parts[i], parts[i+1])
		}
		return b.String() + "--B--\r\n"
	}
	tests := []struct {
		name, body, ct, cookie string
		cookieRoute            bool
		want                   []string // the app's first
		err                    error
	}{
		{name: "json", body: `{"refreshToken":"rt1"}`, ct: json, want: []string{"rt1"}},
		{name: "json without content type", body: `{"refreshToken":"rt1"}`, want: []string{"rt1"}},
		{name: "json repeated: the last first, then the others", body: `{"refreshToken":"decoy","refreshToken":"revoked"}`, ct: json, want: []string{"revoked", "decoy"}},
		{name: "json repeated empty", body: `{"refreshToken":"","refreshToken":"revoked"}`, ct: json, want: []string{"revoked"}},
		{name: "json repeated non-string", body: `{"refreshToken":1,"refreshToken":"revoked"}`, ct: json, want: []string{"revoked"}},
		{name: "json last is not a string: the others still", body: `{"refreshToken":"revoked","refreshToken":1}`, ct: json, want: []string{"revoked"}},
		{name: "json not an object", body: `["refreshToken"]`, ct: json},
		{name: "not json", body: `nope`, ct: json, err: authflow.ErrNotJSON},
		{name: "form", body: `refreshToken=rt%2B1&x=y`, ct: form + "; charset=utf-8", want: []string{"rt+1"}},
		{name: "form repeated: all, the first first", body: `refreshToken=a&refreshToken=b`, ct: form, want: []string{"a", "b"}},
		{name: "form with a malformed pair", body: `x=%zz&refreshToken=a&;`, ct: form, want: []string{"a"}},
		{name: "json text sent as a form is a form", body: `["x","&refreshToken=revoked&",1]`, ct: form, want: []string{"revoked"}},
		{name: "multipart", body: mp("x", "1", "refreshToken", "a", "refreshToken", "b"), ct: "multipart/form-data; boundary=B", want: []string{"a", "b"}},
		{name: "multipart malformed", body: "--B\r\nnope", ct: "multipart/form-data; boundary=B", err: authflow.ErrUnreadableBody},
		{name: "multipart without boundary", body: mp("refreshToken", "a"), ct: "multipart/form-data", err: authflow.ErrUnreadableBody},
		{name: "unreadable body refused even with a cookie (the app may read the body first)", body: `nope`, ct: json, cookie: "a=1; rt=fromcookie", cookieRoute: true, err: authflow.ErrNotJSON},
		{name: "cookie without a body", cookie: "a=1; rt=fromcookie", cookieRoute: true, want: []string{"fromcookie"}},
		{name: "json with a BOM", body: "\xef\xbb\xbf" + `{"refreshToken":"a"}`, ct: json, want: []string{"a"}},
		{name: "form with a BOM", body: "\xef\xbb\xbfrefreshToken=a", ct: form, want: []string{"a"}},
		{name: "form keys as qs reads them", body: `[refreshToken]=a&%5BrefreshToken%5D=b&.refreshToken=c&refreshToken[]=d&xrefreshToken=e`, ct: form, want: []string{"a", "b", "c", "d"}},
		{name: "form value with a bad escape, as qs keeps it", body: `refreshToken=a%zz+b`, ct: form, want: []string{"a%zz b"}},
		{name: "multipart/mixed is multipart", body: mp("refreshToken", "a"), ct: "multipart/mixed; boundary=B", want: []string{"a"}},
		{name: "multipart file part and attachment count", body: "--B\r\nContent-Disposition: form-data; name=\"refreshToken\"; filename=\"x\"\r\n\r\na\r\n--B\r\nContent-Disposition: attachment; name=\"refreshToken\"\r\n\r\nb\r\n--B--\r\n", ct: "multipart/form-data; boundary=B", want: []string{"a", "b"}},
		{name: "multipart base64 and quoted-printable decoded", body: "--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\nContent-Transfer-Encoding: base64\r\n\r\ncnQt\r\nb2xk\r\n--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nq=3Dp\r\n--B--\r\n", ct: "multipart/form-data; boundary=B", want: []string{"rt-old", "q=p"}},
		{name: "multipart name given twice", body: "--B\r\nContent-Disposition: form-data; name=\"refreshToken\"; name=\"x\"\r\n\r\na\r\n--B--\r\n", ct: "multipart/form-data; boundary=B", err: authflow.ErrAmbiguousBody},
		{name: "multipart disposition given twice", body: "--B\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\n\r\na\r\n--B--\r\n", ct: "multipart/form-data; boundary=B", err: authflow.ErrAmbiguousBody},
		{name: "multipart boundary= twice", body: mp("refreshToken", "a"), ct: "multipart/form-data; xboundary=Z; boundary=B", err: authflow.ErrAmbiguousBody},
		{name: "multipart unknown transfer encoding", body: "--B\r\nContent-Disposition: form-data; name=\"refreshToken\"\r\nContent-Transfer-Encoding: x-rot13\r\n\r\na\r\n--B--\r\n", ct: "multipart/form-data; boundary=B", err: authflow.ErrAmbiguousBody},
		{name: "body and cookie, every cookie value, percent-decoded too", body: `{"refreshToken":"b"}`, cookie: `rt=c1; rt="c2"; rt=c%2E3`, cookieRoute: true, want: []string{"b", "c1", "c2", "c%2E3", "c.3"}},
		{name: "nothing", cookieRoute: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route := cfg.Refresh
			if tc.cookieRoute {
				route = withCookie
			}
			got, err := authflow.PresentedRefreshTokens([]byte(tc.body), tc.ct, tc.cookie, route)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	nested := cfg.Refresh
	nested.RequestTokenPath = "auth.refresh"
	got, err := authflow.PresentedRefreshTokens([]byte(`auth[refresh]=a&auth.refresh=b`), form, "", nested)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got, "a dotted path is also its qs bracket form, in body order")
	got, err = authflow.PresentedRefreshTokens([]byte(`{"auth":{"refresh":"a"},"auth":{"refresh":"b"}}`), json, "", nested)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, got)
}

func TestRegister(t *testing.T) {
	access := jwttest.HS256("s", `{"alg":"HS256"}`, `{"sid":"S1","sub":"9","iat":100,"exp":200}`)
	refresh := jwttest.HS256("s", `{"alg":"HS256"}`, `{"exp":900}`)
	req := authflow.Register(authflow.Login{Token: access, RefreshToken: refresh, UserDocumentID: "doc\"1", Username: "ålice", Email: "a@x"},
		names, "1.2.3.4", "UA", "/api/auth/local", "de")
	assert.Equal(t, "doc\"1", req.UserDocumentID)
	assert.Equal(t, "ålice", req.Username)
	assert.Equal(t, "a@x", req.Email)
	assert.Equal(t, protocol.RegisterRequest{
		UserID:           "9", // from the token when the body had none
		Keys:             []string{"sid:S1", token.FingerprintKey(access)},
		RefreshKeys:      []string{token.FingerprintKey(refresh)},
		IP:               "1.2.3.4",
		UserAgent:        "UA",
		IssuedAt:         100,
		ExpiresAt:        200,
		RefreshExpiresAt: 900,
		Route:            "/api/auth/local",
		Locale:           "de",
		UserDocumentID:   "doc\"1",
		Username:         "ålice",
		Email:            "a@x",
	}, req)

	// body encodes to what encoding/json reads back
	assertRoundTrip(t, req, authflow.EncodeRegister)

	// opaque token: fp key only
	req = authflow.Register(authflow.Login{Token: "opaque", UserID: "3"}, names, "", "", "/l", "")
	assert.Equal(t, []string{token.FingerprintKey("opaque")}, req.Keys)
	assert.Equal(t, "3", req.UserID)
	assert.Equal(t, `{"userId":"3","keys":["`+token.FingerprintKey("opaque")+`"],"ip":"","userAgent":"","route":"/l"}`, string(authflow.EncodeRegister(req)))
}

func TestRefreshRevokeFailed(t *testing.T) {
	newAccess := jwttest.HS256("s", `{"alg":"HS256"}`, `{"sid":"S2","exp":300}`)
	r, err := authflow.ParseRefresh([]byte(fmt.Sprintf(`{"jwt":%q,"refreshToken":"rt2"}`, newAccess)), cfg.Refresh)
	require.NoError(t, err)
	req := authflow.RefreshCall("rt1", 200, r, names, "ip", "ua")
	assert.Equal(t, protocol.RefreshRequest{
		PresentedKeys: []string{token.FingerprintKey("rt1")},
		Status:        200,
		Keys:          []string{"sid:S2", token.FingerprintKey(newAccess)},
		RefreshKeys:   []string{token.FingerprintKey("rt2")},
		ExpiresAt:     300,
		IP:            "ip",
		UserAgent:     "ua",
	}, req)
	assertRoundTrip(t, req, authflow.EncodeRefresh)

	failed := authflow.RefreshCall("rt1", 401, authflow.Refresh{}, names, "", "")
	assert.Empty(t, failed.Keys)
	assert.JSONEq(t, `{"presentedKeys":["`+token.FingerprintKey("rt1")+`"],"status":401}`, string(authflow.EncodeRefresh(failed)))

	_, err = authflow.ParseRefresh([]byte(`{"refreshToken":"x"}`), cfg.Refresh)
	assert.ErrorIs(t, err, authflow.ErrNoToken)

	assert.JSONEq(t, `{"keys":["sid:a","fp:b"],"reason":"logout"}`, string(authflow.EncodeRevoke(protocol.RevokeRequest{Keys: []string{"sid:a", "fp:b"}, Reason: "logout"})))
	assert.JSONEq(t, `{"keys":[]}`, string(authflow.EncodeRevoke(protocol.RevokeRequest{})))
	assert.JSONEq(t, `{"identifier":"a\"b","ip":"1.1.1.1","status":400}`, string(authflow.EncodeFailedLogin(protocol.FailedLogin{Identifier: `a"b`, IP: "1.1.1.1", Status: 400})))
}

func TestParseAnswers(t *testing.T) {
	r, err := authflow.ParseRegisterResponse([]byte(`{"sessionId":"s1","decision":"deny","reason":"policy","message":"Blocked country","score":35}`))
	require.NoError(t, err)
	assert.Equal(t, protocol.RegisterResponse{SessionID: "s1", Decision: "deny", Reason: "policy", Message: "Blocked country", Score: 35}, r)
	r, err = authflow.ParseRegisterResponse([]byte(`{"decision":"allow","score":"high","sessionId":7}`))
	require.NoError(t, err)
	assert.Equal(t, protocol.RegisterResponse{Decision: "allow"}, r)
	rr, err := authflow.ParseRefreshResponse([]byte(`{"decision":"deny","reason":"reuse","sessionId":"s"}`))
	require.NoError(t, err)
	assert.Equal(t, protocol.RefreshResponse{SessionID: "s", Decision: "deny", Reason: "reuse"}, rr)
	ur, err := authflow.ParseUnreadableResponse([]byte(`{"decision":"deny","reason":"policy","message":"no"}`))
	require.NoError(t, err)
	assert.Equal(t, protocol.UnreadableLoginResponse{Decision: "deny", Reason: "policy", Message: "no"}, ur)
	// Every answer is an object with a decision.
	for _, bad := range []string{``, `nope`, `[]`, `{}`, `{"decision":"maybe"}`, `{"decision":true}`, `{"error":{"status":500}}`} {
		_, err := authflow.ParseRegisterResponse([]byte(bad))
		assert.Error(t, err, bad)
		_, err = authflow.ParseRefreshResponse([]byte(bad))
		assert.Error(t, err, bad)
		_, err = authflow.ParseUnreadableResponse([]byte(bad))
		assert.Error(t, err, bad)
		_, err = authflow.ParseLoginCheckResponse([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestReadLogin(t *testing.T) {
	route := config.Default().Login
	for _, tc := range []struct {
		name string
		a    authflow.Answer
		why  string
	}{
		{"readable", authflow.Answer{Body: []byte(`{"jwt":"a.b.c","user":{"id":1}}`)}, ""},
		{"identity encoding is plain", authflow.Answer{Body: []byte(`{"jwt":"a.b.c"}`), ContentEncoding: " Identity "}, ""},
		{"gzip", authflow.Answer{Body: []byte{0x1f, 0x8b}, ContentEncoding: "gzip"}, protocol.UnreadableCompressed},
		{"br even if it parses", authflow.Answer{Body: []byte(`{"jwt":"a.b.c"}`), ContentEncoding: "br"}, protocol.UnreadableCompressed},
		{"too large", authflow.Answer{TooLarge: true}, protocol.UnreadableTooLarge},
		{"too large body", authflow.Answer{Body: []byte(`{"jwt":"` + strings.Repeat("a", authflow.MaxBodyLen) + `"}`)}, protocol.UnreadableTooLarge},
		{"html", authflow.Answer{Body: []byte(`<html>welcome</html>`)}, protocol.UnreadableNotJSON},
		{"empty", authflow.Answer{}, protocol.UnreadableNotJSON},
		{"no token", authflow.Answer{Body: []byte(`{"token":"a.b.c"}`)}, protocol.UnreadableNoToken},
		{"token not a string", authflow.Answer{Body: []byte(`{"jwt":42}`)}, protocol.UnreadableNoToken},
	} {
		l, why := authflow.ReadLogin(tc.a, route)
		assert.Equal(t, tc.why, why, tc.name)
		if tc.why == "" {
			assert.Equal(t, "a.b.c", l.Token, tc.name)
		}
	}
}

func TestUnreadableWire(t *testing.T) {
	u := protocol.UnreadableLogin{IP: "10.0.0.1", UserAgent: "ua \"x\"", Status: 200, Why: protocol.UnreadableNoToken, Route: "/login"}
	assertRoundTrip(t, u, authflow.EncodeUnreadable)
}

func FuzzParseLogin(f *testing.F) {
	f.Add([]byte(`{"jwt":"a.b.c","user":{"id":1}}`))
	f.Add([]byte(`{"jwt":"a.e30.c","refreshToken":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := authflow.ParseLogin(body, cfg.Login)
		if err != nil {
			return
		}
		req := authflow.Register(l, names, "ip", "ua", "/l", "")
		var back protocol.RegisterRequest
		if err := json.Unmarshal(authflow.EncodeRegister(req), &back); err != nil {
			t.Fatalf("encoded register is not JSON: %v", err)
		}
		_, _ = authflow.ParseRegisterResponse(body)
	})
}

// assertRoundTrip: what encode writes, encoding/json reads back as v.
func assertRoundTrip[T any](t *testing.T, v T, encode func(T) []byte) {
	t.Helper()
	var back T
	require.NoError(t, json.Unmarshal(encode(v), &back))
	assert.Equal(t, v, back)
}

// TestEncodeAsEncodingJSON: every request the plugin sends is encoded as
// encoding/json encodes it (same members, same values), empty and with
// every field set, except that a nil list without omitempty is [], not
// null. A field of a kind the encoder does not write fails here (it
// panics), not in a proxy.
func TestEncodeAsEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		encode func(any) []byte
		zero   any
	}{
		{"register", encodeAs(authflow.EncodeRegister), protocol.RegisterRequest{}},
		{"refresh", encodeAs(authflow.EncodeRefresh), protocol.RefreshRequest{}},
		{"revoke", encodeAs(authflow.EncodeRevoke), protocol.RevokeRequest{}},
		{"failed login", encodeAs(authflow.EncodeFailedLogin), protocol.FailedLogin{}},
		{"login check", encodeAs(authflow.EncodeLoginCheck), protocol.LoginCheck{}},
		{"unreadable login", encodeAs(authflow.EncodeUnreadable), protocol.UnreadableLogin{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []any{tc.zero, everyFieldSet(tc.zero)} {
				want, err := json.Marshal(nilListsEmpty(v))
				require.NoError(t, err)
				assert.JSONEq(t, string(want), string(tc.encode(v)))
			}
		})
	}
}

func encodeAs[T any](encode func(T) []byte) func(any) []byte {
	return func(v any) []byte { return encode(v.(T)) }
}

// everyFieldSet is v with every string, integer and list field set to a
// value that needs escaping or is not zero.
func everyFieldSet(v any) any {
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	for i := range rv.NumField() {
		switch f := rv.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("a\"b\\c\u00e9\n" + rv.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(-1_700_000_000 - int64(i))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"sid:1", "fp:</x>"}))
		default:
			panic("everyFieldSet: add " + f.Kind().String())
		}
	}
	return rv.Interface()
}

// nilListsEmpty is v with its nil lists that have no omitempty made empty.
func nilListsEmpty(v any) any {
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	rv.Set(reflect.ValueOf(v))
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.Kind() == reflect.Slice && f.IsNil() && !strings.Contains(rv.Type().Field(i).Tag.Get("json"), "omitempty") {
			f.Set(reflect.MakeSlice(f.Type(), 0, 0))
		}
	}
	return rv.Interface()
}

func TestSetCookieValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"none", nil, ""},
		{"other cookies", []string{"a=1; Path=/", "b=2"}, ""},
		{"the cookie", []string{"a=1", "rt=tok; Path=/; HttpOnly; SameSite=Lax"}, "tok"},
		{"quoted", []string{`rt="tok"; Path=/`}, "tok"},
		{"set twice: the last, as a browser keeps it", []string{"rt=one", "rt=two"}, "two"},
		{"cleared last", []string{"rt=one", "rt=; Max-Age=0"}, ""},
		{"a prefix of the name is another cookie", []string{"xrt=1", "rtx=2"}, ""},
	} {
		assert.Equal(t, tc.want, authflow.SetCookieValue(tc.set, "rt"), tc.name)
	}
}
