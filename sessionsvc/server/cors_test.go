package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const appOrigin = "https://app.example.com"

// preflight is a browser's preflight for method on path from origin.
func preflight(origin, method string) map[string]string {
	return map[string]string{"Origin": origin, "Access-Control-Request-Method": method,
		"Access-Control-Request-Headers": "authorization,content-type"}
}

// TestCORS: the user and admin APIs answer browsers on other origins as
// Strapi's default strapi::cors does (@koa/cors: preflight 204 with its
// methods, headers and maxAge; Access-Control-Allow-Origin on answers,
// errors included), without credentials; the internal API and the
// operational endpoints get none of it.
func TestCORS(t *testing.T) {
	tok := token(t, "alice", "", nil)
	for _, tc := range []struct {
		name    string
		origins []string
		method  string
		path    string
		hdr     map[string]string
		user    bool // send alice's bearer token
		status  int
		want    map[string]string // headers; "" = absent
	}{
		{name: "user API preflight", origins: []string{"*"}, method: "OPTIONS", path: ua + "/my-sessions/x1",
			hdr: preflight(appOrigin, "DELETE"), status: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS",
				"Access-Control-Allow-Headers": "Content-Type,Authorization,Origin,Accept", "Access-Control-Max-Age": "31536000",
				"Access-Control-Allow-Credentials": "", "Vary": ""}},
		{name: "admin API preflight", origins: []string{"*"}, method: "OPTIONS", path: aa + "/settings",
			hdr: preflight(appOrigin, "PUT"), status: 204, want: map[string]string{"Access-Control-Allow-Origin": "*"}},
		{name: "user API answer", origins: []string{"*"}, method: "GET", path: ua + "/my-sessions", user: true,
			hdr: map[string]string{"Origin": appOrigin}, status: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After,X-Session-Terminated-Reason",
				"Access-Control-Allow-Credentials": ""}},
		{name: "error answer", origins: []string{"*"}, method: "GET", path: ua + "/my-sessions",
			hdr: map[string]string{"Origin": appOrigin}, status: 401, want: map[string]string{"Access-Control-Allow-Origin": "*"}},
		{name: "no Origin: not a CORS request", origins: []string{"*"}, method: "GET", path: ua + "/my-sessions", user: true,
			status: 200, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "OPTIONS that is not a preflight", origins: []string{"*"}, method: "OPTIONS", path: ua + "/my-sessions",
			hdr: map[string]string{"Origin": appOrigin}, status: 405},
		{name: "internal API: none", origins: []string{"*"}, method: "OPTIONS", path: "/internal/v1/sync",
			hdr: preflight(appOrigin, "GET"), status: 405, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "healthz: none", origins: []string{"*"}, method: "GET", path: "/healthz",
			hdr: map[string]string{"Origin": appOrigin}, status: 200, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "dot segments do not reach the internal API", origins: []string{"*"}, method: "OPTIONS", path: aa + "/../internal/v1/sync",
			hdr: preflight(appOrigin, "GET"), status: 405, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "listed origin", origins: []string{appOrigin}, method: "GET", path: ua + "/my-sessions", user: true,
			hdr: map[string]string{"Origin": appOrigin}, status: 200,
			want: map[string]string{"Access-Control-Allow-Origin": appOrigin, "Vary": "Origin", "Access-Control-Allow-Credentials": ""}},
		{name: "listed origin preflight", origins: []string{appOrigin}, method: "OPTIONS", path: ua + "/logout",
			hdr: preflight(appOrigin, "POST"), status: 204, want: map[string]string{"Access-Control-Allow-Origin": appOrigin, "Vary": "Origin"}},
		{name: "listed origin, other spelling", origins: []string{"https://APP.example.com:443/"}, method: "GET", path: ua + "/my-sessions", user: true,
			hdr: map[string]string{"Origin": appOrigin}, status: 200, want: map[string]string{"Access-Control-Allow-Origin": appOrigin}},
		{name: "unlisted origin", origins: []string{appOrigin}, method: "GET", path: ua + "/my-sessions", user: true,
			hdr: map[string]string{"Origin": "https://evil.example"}, status: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{name: "unlisted origin preflight", origins: []string{appOrigin}, method: "OPTIONS", path: ua + "/logout",
			hdr: preflight("https://evil.example", "POST"), status: 403, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "no CORS configured", method: "OPTIONS", path: ua + "/logout",
			hdr: preflight(appOrigin, "POST"), status: 405, want: map[string]string{"Access-Control-Allow-Origin": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.CORSOrigins = tc.origins })
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			if tc.user {
				hdr["Authorization"] = "Bearer " + tok
			}
			r := e.do(tc.method, tc.path, nil, hdr)
			require.Equal(t, tc.status, r.status, string(r.raw))
			for k, v := range tc.want {
				assert.Equal(t, v, r.header.Get(k), k)
			}
			if tc.status >= 400 {
				errorShape.check(t, r.body, "")
			}
		})
	}
}

// TestCORSRateLimited: a browser reads a 429's wait.
func TestCORSRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"*"} })
	tok := token(t, "alice", "", nil)
	hdr := map[string]string{"Authorization": "Bearer " + tok, "Origin": appOrigin}
	for i := 0; i < 10; i++ {
		require.Equal(t, 200, e.do("POST", ua+"/logout-all", nil, hdr).status)
	}
	r := e.do("POST", ua+"/logout-all", nil, hdr)
	require.Equal(t, 429, r.status)
	assert.Equal(t, "*", r.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, r.header.Get("Access-Control-Expose-Headers"), "Retry-After")
}

func TestParseCORSOrigins(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "none", want: nil},
		{in: "*", want: []string{"*"}},
		{in: " https://b.example , http://A.example:8080/ ", want: []string{"http://a.example:8080", "https://b.example"}},
		{in: "https://a.example:443,http://a.example:80", want: []string{"http://a.example", "https://a.example"}},
		{in: "*,https://a.example", wantErr: `"*"`},
		{in: "a.example", wantErr: "http:// or https://"},
		{in: "https://a.example/app", wantErr: "no path"},
		{in: "https://a.example?x=1", wantErr: "no path"},
		{in: "https://u@a.example", wantErr: "no path"},
		{in: "null", wantErr: "http:// or https://"},
	} {
		got, err := ParseCORSOrigins(tc.in)
		if tc.wantErr != "" {
			assert.ErrorContains(t, err, tc.wantErr, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestNewRefusesBadCORSOrigins(t *testing.T) {
	e := newEnv(t)
	_, err := New(Config{Store: e.st, InternalKey: testKey, CORSOrigins: []string{"app.example"}})
	assert.ErrorContains(t, err, "CORSOrigins")
}
