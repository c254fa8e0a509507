package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

type jsonObj = map[string]any

// openAPIDoc fetches the document the server serves.
func openAPIDoc(t *testing.T, e *env) jsonObj {
	t.Helper()
	r := e.do("GET", "/openapi.json", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Contains(t, r.header.Get("Content-Type"), "application/json")
	var doc jsonObj
	require.NoError(t, json.Unmarshal(r.raw, &doc))
	return doc
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// operations lists "METHOD /path" of every documented operation.
func operations(doc jsonObj) map[string]jsonObj {
	out := map[string]jsonObj{}
	for path, item := range doc["paths"].(jsonObj) {
		for method, op := range item.(jsonObj) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out[strings.ToUpper(method)+" "+path] = op.(jsonObj)
			}
		}
	}
	return out
}

// resolve follows a local $ref ("#/components/...").
func resolve(t *testing.T, doc jsonObj, v jsonObj) jsonObj {
	t.Helper()
	for i := 0; i < 10; i++ {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		require.True(t, strings.HasPrefix(ref, "#/"), "only local refs: %s", ref)
		var cur any = doc
		for _, part := range strings.Split(ref[2:], "/") {
			m, ok := cur.(jsonObj)
			require.True(t, ok, "bad ref %s", ref)
			cur, ok = m[part]
			require.True(t, ok, "unresolved ref %s", ref)
		}
		v = cur.(jsonObj)
	}
	t.Fatalf("ref loop")
	return nil
}

// checkSchema validates v against an OpenAPI 3.1 (JSON Schema) schema: the
// subset the document uses ($ref, allOf, type with null, required,
// properties, items, enum, minimum/maximum, format date-time). It returns
// the problems found, each with its JSON path.
func checkSchema(t *testing.T, doc jsonObj, schema jsonObj, v any, at string) []string {
	t.Helper()
	schema = resolve(t, doc, schema)
	var errs []string
	for _, sub := range asList(schema["allOf"]) {
		errs = append(errs, checkSchema(t, doc, sub.(jsonObj), v, at)...)
	}
	if ty, ok := schema["type"]; ok {
		var types []string
		switch tt := ty.(type) {
		case string:
			types = []string{tt}
		case []any:
			for _, x := range tt {
				types = append(types, x.(string))
			}
		}
		if !slicesContains(types, oaJSONType(v)) && !(oaJSONType(v) == "integer" && slicesContains(types, "number")) {
			return append(errs, fmt.Sprintf("%s: %s, want %v", at, oaJSONType(v), types))
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slicesContainsAny(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v not in %v", at, v, enum))
	}
	switch x := v.(type) {
	case jsonObj:
		for _, r := range asList(schema["required"]) {
			if _, ok := x[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %q missing", at, r))
			}
		}
		props, _ := schema["properties"].(jsonObj)
		for k, sub := range props {
			if val, ok := x[k]; ok {
				errs = append(errs, checkSchema(t, doc, sub.(jsonObj), val, at+"."+k)...)
			}
		}
	case []any:
		if items, ok := schema["items"].(jsonObj); ok {
			for i, el := range x {
				errs = append(errs, checkSchema(t, doc, items, el, at+"["+strconv.Itoa(i)+"]")...)
			}
		}
	case float64:
		if m, ok := schema["minimum"].(float64); ok && x < m {
			errs = append(errs, fmt.Sprintf("%s: %v < minimum %v", at, x, m))
		}
		if m, ok := schema["maximum"].(float64); ok && x > m {
			errs = append(errs, fmt.Sprintf("%s: %v > maximum %v", at, x, m))
		}
	case string:
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", at, x))
			}
		}
	}
	return errs
}

func asList(v any) []any { l, _ := v.([]any); return l }

func oaJSONType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case jsonObj:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func slicesContains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func slicesContainsAny(l []any, v any) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// TestOpenAPIDocument: the served document is OpenAPI 3.1, every $ref
// resolves, every operation declares its security, tags and answers, and
// every path parameter is declared.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t)
	doc := openAPIDoc(t, e)
	assert.Equal(t, "3.1.0", doc["openapi"])
	schemes := doc["components"].(jsonObj)["securitySchemes"].(jsonObj)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case jsonObj:
			if _, ok := x["$ref"]; ok {
				resolve(t, doc, x)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	for name, op := range operations(doc) {
		assert.NotEmpty(t, op["summary"], "%s: summary", name)
		assert.NotEmpty(t, op["tags"], "%s: tags", name)
		sec, ok := op["security"].([]any)
		require.True(t, ok, "%s: security must be explicit ([] for none)", name)
		for _, req := range sec {
			for s := range req.(jsonObj) {
				assert.Contains(t, schemes, s, "%s: security scheme", name)
			}
		}
		responses := op["responses"].(jsonObj)
		require.Contains(t, responses, "200", "%s", name)
		_, path, _ := strings.Cut(name, " ")
		declared := map[string]bool{}
		for _, p := range asList(op["parameters"]) {
			pp := resolve(t, doc, p.(jsonObj))
			if pp["in"] == "path" {
				declared[pp["name"].(string)] = true
				assert.Equal(t, true, pp["required"], "%s: path parameter %s must be required", name, pp["name"])
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			assert.True(t, declared[m[1]], "%s: path parameter {%s} not declared", name, m[1])
		}
	}
}

// probePath fills a path template with plausible values.
func probePath(path string) string {
	return pathParam.ReplaceAllStringFunc(path, func(p string) string {
		if p == "{ip}" {
			return "192.0.2.1"
		}
		return "x1"
	})
}

// TestOpenAPICoversRoutes: every route the server registers is documented,
// and every documented operation is routed to that same pattern. Generic:
// a new route fails this test until it is described in openapi.yaml.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t)
	ops := operations(openAPIDoc(t, e))
	routes := e.srv.Routes()
	require.Greater(t, len(routes), 20)
	registered := map[string]bool{}
	for _, r := range routes {
		registered[r] = true
		_, ok := ops[r]
		assert.True(t, ok, "route %s is not in openapi.yaml", r)
	}
	for name := range ops {
		method, path, _ := strings.Cut(name, " ")
		req := httptest.NewRequest(method, probePath(path), nil)
		_, pattern := e.srv.mux.Handler(req)
		assert.Equal(t, name, pattern, "documented %s is routed elsewhere", name)
		assert.True(t, registered[name], "documented %s is not a registered route", name)
	}
}

// sampler records real answers per operation and validates them against
// the document.
type sampler struct {
	t    *testing.T
	doc  jsonObj
	ops  map[string]jsonObj
	seen map[string]bool
}

func (s *sampler) check(op string, r resp, want int) {
	s.t.Helper()
	require.Equal(s.t, want, r.status, "%s: %s", op, r.raw)
	o, ok := s.ops[op]
	require.True(s.t, ok, "no operation %s", op)
	s.seen[op] = true
	responses := o["responses"].(jsonObj)
	rs, ok := responses[strconv.Itoa(r.status)].(jsonObj)
	if !ok {
		rs, ok = responses["default"].(jsonObj)
	}
	require.True(s.t, ok, "%s answered %d, which is not documented: %s", op, r.status, r.raw)
	rs = resolve(s.t, s.doc, rs)
	content, _ := rs["content"].(jsonObj)
	ct := r.header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	media, ok := content[strings.TrimSpace(mt)].(jsonObj)
	require.True(s.t, ok, "%s %d: content type %q not documented", op, r.status, ct)
	if mt != "application/json" {
		return
	}
	var v any
	require.NoError(s.t, json.Unmarshal(r.raw, &v), "%s: %s", op, r.raw)
	errs := checkSchema(s.t, s.doc, media["schema"].(jsonObj), v, "$")
	assert.Empty(s.t, errs, "%s %d answer does not match the document: %s", op, r.status, r.raw)
}

// TestOpenAPISamples drives every documented operation with real requests
// and checks each answer against the document (required fields, types,
// enums, formats; errors in the Strapi shape). An operation without a
// sample fails the test, so new routes get one.
func TestOpenAPISamples(t *testing.T) {
	e := newEnv(t)
	doc := openAPIDoc(t, e)
	s := &sampler{t: t, doc: doc, ops: operations(doc), seen: map[string]bool{}}
	const u, a = "/api/magic-sessionmanager", "/magic-sessionmanager"

	// Internal API, as the filter calls it.
	tokA := token(t, "u1", "", nil)
	keysA := tokenKeys(t, tokA)
	reg := e.internal("POST", "/internal/v1/sessions", protocol.RegisterRequest{UserID: "u1", Keys: keysA, RefreshKeys: []string{"fp:ffeeddccbbaa99887766554433221100"},
		IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", ExpiresAt: time.Now().Add(time.Hour).Unix(),
		RefreshExpiresAt: time.Now().Add(24 * time.Hour).Unix(), Route: "/api/auth/local"})
	s.check("POST /internal/v1/sessions", reg, 200)
	s.check("POST /internal/v1/sessions", e.do("POST", "/internal/v1/sessions", "{}", nil), 401)
	s.check("POST /internal/v1/sessions/tokens", e.internal("POST", "/internal/v1/sessions/tokens", protocol.RefreshRequest{
		PresentedKeys: []string{"fp:ffeeddccbbaa99887766554433221100"}, Status: 200, Keys: []string{"fp:0123456789abcdef0123456789abcdef"}, RefreshKeys: []string{"fp:00112233445566778899aabbccddeeff"}}), 200)
	s.check("POST /internal/v1/activity", e.internal("POST", "/internal/v1/activity", []protocol.Activity{{Key: keysA[0], At: time.Now().UnixMilli()}}), 200)
	s.check("POST /internal/v1/activity", e.internal("POST", "/internal/v1/activity", "{}"), 400)
	s.check("POST /internal/v1/logins/failed", e.internal("POST", "/internal/v1/logins/failed", protocol.FailedLogin{Identifier: "eve", IP: "198.51.100.9", Status: 401}), 200)
	s.check("GET /internal/v1/sync", e.internal("GET", "/internal/v1/sync?cursor=0", nil), 200)
	s.check("GET /internal/v1/sync", e.internal("GET", "/internal/v1/sync?cursor=0&format=binary", nil), 200)
	s.check("GET /internal/v1/sync", e.internal("GET", "/internal/v1/sync?format=xml", nil), 400)
	s.check("GET /internal/v1/sync", e.internal("GET", "/internal/v1/sync?wait=x", nil), 400)

	// User API.
	s.check("GET "+u+"/my-sessions", e.user(tokA, "GET", u+"/my-sessions", nil), 200)
	s.check("GET "+u+"/my-sessions", e.do("GET", u+"/my-sessions", nil, nil), 401)
	s.check("GET "+u+"/current-session", e.user(tokA, "GET", u+"/current-session", nil), 200)
	s.check("GET "+u+"/user/{userId}/sessions", e.user(tokA, "GET", u+"/user/u1/sessions", nil), 200)
	s.check("GET "+u+"/user/{userId}/sessions", e.user(tokA, "GET", u+"/user/u2/sessions", nil), 403)
	tokB := token(t, "u1", "", jwt2())
	sidB := e.login("u1", tokB, "")
	s.check("DELETE "+u+"/my-sessions/{sessionId}", e.user(tokA, "DELETE", u+"/my-sessions/"+sidB, nil), 200)
	s.check("DELETE "+u+"/my-sessions/{sessionId}", e.user(tokA, "DELETE", u+"/my-sessions/"+reg.body["sessionId"].(string), nil), 400) // current
	e.login("u1", token(t, "u1", "", jwt2()), "")
	s.check("POST "+u+"/logout-others", e.user(tokA, "POST", u+"/logout-others", nil), 200)
	s.check("POST "+u+"/logout", e.user(tokA, "POST", u+"/logout", nil), 200)
	tokC := token(t, "u1", "", jwt2())
	e.login("u1", tokC, "")
	s.check("POST "+u+"/logout-all", e.user(tokC, "POST", u+"/logout-all", nil), 200)
	s.check("POST /internal/v1/revoke", e.internal("POST", "/internal/v1/revoke", protocol.RevokeRequest{Keys: keysA}), 200)

	// Admin API.
	_, sidD := e.signIn("u2", "")
	sidE := e.login("u2", token(t, "u2", "", jwt2()), "")
	s.check("GET "+a+"/sessions", e.admin("GET", a+"/sessions?pageSize=5&sort=-loginTime", nil), 200)
	s.check("GET "+a+"/sessions", e.admin("GET", a+"/sessions?sort=nope", nil), 400)
	s.check("GET "+a+"/sessions", e.do("GET", a+"/sessions", nil, nil), 401)
	s.check("GET "+a+"/sessions/active", e.admin("GET", a+"/sessions/active", nil), 200)
	s.check("GET "+a+"/user/{userId}/sessions", e.admin("GET", a+"/user/u2/sessions", nil), 200)
	s.check("POST "+a+"/sessions/{sessionId}/terminate", e.admin("POST", a+"/sessions/"+sidD+"/terminate", nil), 200)
	s.check("POST "+a+"/sessions/{sessionId}/terminate", e.admin("POST", a+"/sessions/sess_nope/terminate", nil), 200) // as the Strapi plugin
	s.check("DELETE "+a+"/sessions/{sessionId}", e.admin("DELETE", a+"/sessions/"+sidD, nil), 200)
	s.check("POST "+a+"/user/{userId}/terminate-all", e.admin("POST", a+"/user/u2/terminate-all", nil), 200)
	s.check("POST "+a+"/user/{userId}/toggle-block", e.admin("POST", a+"/user/u2/toggle-block", nil), 200)
	s.check("POST "+a+"/sessions/clean-inactive", e.admin("POST", a+"/sessions/clean-inactive", nil), 200)
	_ = sidE
	got := e.admin("GET", a+"/settings", nil)
	s.check("GET "+a+"/settings", got, 200)
	s.check("PUT "+a+"/settings", e.admin("PUT", a+"/settings", got.body["settings"]), 200)
	s.check("PUT "+a+"/settings", e.admin("PUT", a+"/settings", "[1]"), 400)
	s.check("GET "+a+"/geolocation/{ip}", e.admin("GET", a+"/geolocation/192.0.2.1", nil), 501) // no GeoIP here
	s.check("GET "+a+"/geolocation/{ip}", e.admin("GET", a+"/geolocation/not-an-ip", nil), 400)

	s.check("POST /internal/v1/logins/unreadable", e.internal("POST", "/internal/v1/logins/unreadable",
		protocol.UnreadableLogin{IP: "203.0.113.9", Status: 200, Why: protocol.UnreadableCompressed, Route: "/api/auth/local"}), 200)
	s.check("POST /internal/v1/logins/unreadable", e.internal("POST", "/internal/v1/logins/unreadable",
		protocol.UnreadableLogin{IP: "203.0.113.9", Status: 200, Why: "unknown"}), 400)

	// Login protection: a pre-login check, lockouts, the audit.
	s.check("POST /internal/v1/logins/check", e.internal("POST", "/internal/v1/logins/check", protocol.LoginCheck{IP: "198.51.100.1", Identifier: "dave", UserAgent: "test"}), 200)
	s.check("POST /internal/v1/logins/check", e.do("POST", "/internal/v1/logins/check", "{}", nil), 401)
	for range 5 {
		e.internal("POST", "/internal/v1/logins/failed", protocol.FailedLogin{Identifier: "dave", IP: "198.51.100.1", Status: 401})
	}
	locked := e.internal("POST", "/internal/v1/logins/check", protocol.LoginCheck{IP: "198.51.100.1", Identifier: "dave"})
	s.check("POST /internal/v1/logins/check", locked, 200)
	assert.Equal(t, protocol.DecisionDeny, locked.body["decision"], "the sample covers a lockout answer")
	s.check("GET "+a+"/lockouts", e.admin("GET", a+"/lockouts", nil), 200)
	s.check("GET "+a+"/lockouts", e.admin("GET", a+"/lockouts?limit=0", nil), 400)
	s.check("POST "+a+"/lockouts/unlock", e.admin("POST", a+"/lockouts/unlock", map[string]any{"type": "identifier", "value": "dave"}), 200)
	s.check("POST "+a+"/lockouts/unlock", e.admin("POST", a+"/lockouts/unlock", map[string]any{"type": "identifier", "value": "dave"}), 404)
	s.check("GET "+a+"/audit", e.admin("GET", a+"/audit?limit=1", nil), 200)
	s.check("GET "+a+"/audit", e.admin("GET", a+"/audit?before=x", nil), 400)

	// Strapi plugin compatibility: licence and GeoIP routes.
	s.check("GET "+a+"/license/status", e.admin("GET", a+"/license/status", nil), 200)
	s.check("POST "+a+"/license/auto-create", e.admin("POST", a+"/license/auto-create", nil), 200)
	s.check("POST "+a+"/license/create", e.admin("POST", a+"/license/create", map[string]any{"email": "a@example.com", "firstName": "A", "lastName": "B"}), 200)
	s.check("POST "+a+"/license/create", e.admin("POST", a+"/license/create", map[string]any{}), 400)
	s.check("POST "+a+"/license/ping", e.admin("POST", a+"/license/ping", nil), 200)
	s.check("POST "+a+"/license/store-key", e.admin("POST", a+"/license/store-key", map[string]any{"licenseKey": "k"}), 200)
	s.check("POST "+a+"/license/store-key", e.admin("POST", a+"/license/store-key", map[string]any{}), 400)
	s.check("GET "+a+"/geoip/status", e.admin("GET", a+"/geoip/status", nil), 200)
	s.check("PUT "+a+"/geoip/credentials", e.admin("PUT", a+"/geoip/credentials", map[string]any{"accountId": "1", "licenseKey": "k"}), 200)
	s.check("PUT "+a+"/geoip/credentials", e.admin("PUT", a+"/geoip/credentials", map[string]any{}), 400)
	s.check("POST "+a+"/geoip/update", e.admin("POST", a+"/geoip/update", nil), 400) // no GEOIP_DB here

	// Operations.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		s.check("GET "+p, e.do("GET", p, nil, nil), 200)
	}

	var missing []string
	for op := range s.ops {
		if !s.seen[op] {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "documented operations without a sample answer in this test")
}

// jwt2 makes a token distinct from another issued in the same second.
func jwt2() jwt.MapClaims {
	return jwt.MapClaims{"jti": fmt.Sprintf("j%d", time.Now().UnixNano())}
}

// TestSchemaChecker: the checker catches what it claims to.
func TestSchemaChecker(t *testing.T) {
	doc := jsonObj{"components": jsonObj{"schemas": jsonObj{
		"S": jsonObj{"type": "object", "required": []any{"a"}, "properties": jsonObj{
			"a": jsonObj{"type": "integer", "minimum": 0.0},
			"b": jsonObj{"type": []any{"string", "null"}, "format": "date-time"},
			"c": jsonObj{"type": "array", "items": jsonObj{"type": "string", "enum": []any{"x", "y"}}},
		}},
	}}}
	ref := jsonObj{"$ref": "#/components/schemas/S"}
	for _, tt := range []struct {
		body string
		want string
	}{
		{`{"a":1,"b":null,"c":["x"]}`, ""},
		{`{"a":1,"b":"2026-12-03T08:00:00Z"}`, ""},
		{`{"b":null}`, `required "a" missing`},
		{`{"a":"1"}`, "$.a: string"},
		{`{"a":1.5}`, "$.a: number"},
		{`{"a":-1}`, "minimum"},
		{`{"a":1,"b":"yesterday"}`, "date-time"},
		{`{"a":1,"c":["z"]}`, "not in"},
		{`[]`, "$: array"},
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(tt.body), &v))
		errs := strings.Join(checkSchema(t, doc, ref, v, "$"), "; ")
		if tt.want == "" {
			assert.Empty(t, errs, tt.body)
		} else {
			assert.Contains(t, errs, tt.want, tt.body)
		}
	}
}
