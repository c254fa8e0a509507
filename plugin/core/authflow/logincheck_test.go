package authflow

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

func TestLoginIdentifier(t *testing.T) {
	tests := []struct {
		name, body, ct, path, want string
	}{
		{"json string", `{"identifier":" Alice@Example.com ","password":"x"}`, "application/json", "identifier", " Alice@Example.com "},
		{"json without content type", `{"identifier":"alice"}`, "", "identifier", "alice"},
		{"repeated key: the last, as the app reads it", `{"identifier":"decoy","password":"x","identifier":"Victim"}`, "application/json", "identifier", "Victim"},
		{"escaped key", `{"identifier":"decoy","identif\u0069er":"victim"}`, "application/json", "identifier", "victim"},
		{"repeated nested", `{"auth":{"email":"a"},"auth":{"email":"b"}}`, "application/json", "auth.email", "b"},
		{"not an object", `["identifier"]`, "application/json", "identifier", ""},
		{"nested path", `{"auth":{"email":"a@b"}}`, "application/json", "auth.email", "a@b"},
		{"number", `{"identifier":12345}`, "application/json", "identifier", "12345"},
		{"array", `{"identifier":["alice"]}`, "application/json", "identifier", `["alice"]`},
		{"object", `{"identifier":{"$ne":null}}`, "application/json", "identifier", `{"$ne":null}`},
		{"null", `{"identifier":null}`, "application/json", "identifier", ""},
		{"missing", `{"password":"x"}`, "application/json", "identifier", ""},
		{"form", `identifier=Carol%40example.com&password=x`, "application/x-www-form-urlencoded; charset=utf-8", "identifier", "Carol@example.com"},
		{"form repeated: first, as the app reads it", `identifier=a&identifier=b`, "application/x-www-form-urlencoded", "identifier", "a"},
		{"form ignored without its content type", `identifier=a`, "text/plain", "identifier", ""},
		{"json text sent as a form is a form", `["x","&identifier=victim&",1]`, "application/x-www-form-urlencoded", "identifier", "victim"},
		{"json object sent as a form: no such field", `{"identifier":"a"}`, "application/x-www-form-urlencoded", "identifier", ""},
		{"form with a stray semicolon: the pairs the app reads", `identifier=victim&password=x&;`, "application/x-www-form-urlencoded", "identifier", "victim"},
		{"form with a bad escape elsewhere", `password=%zz&identifier=victim`, "application/x-www-form-urlencoded", "identifier", "victim"},
		{"multipart", "--x\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw\r\n--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nalice\r\n--x--\r\n", "multipart/form-data; boundary=x", "identifier", "alice"},
		{"multipart quoted boundary, repeated: first", "--a b\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nfirst\r\n--a b\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nsecond\r\n--a b--\r\n", `Multipart/Form-Data; boundary="a b"`, "identifier", "first"},
		{"multipart file part without a content type is a field (formidable)", "--x\r\nContent-Disposition: form-data; name=\"identifier\"; filename=\"f\"\r\n\r\nalice\r\n--x--\r\n", "multipart/form-data; boundary=x", "identifier", "alice"},
		{"multipart/mixed is multipart", "--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nalice\r\n--x--\r\n", "multipart/mixed; boundary=x", "identifier", "alice"},
		{"form with a BOM", "\xef\xbb\xbfidentifier=victim", "application/x-www-form-urlencoded", "identifier", "victim"},
		{"json with a BOM", "\xef\xbb\xbf" + `{"identifier":"victim"}`, "application/json", "identifier", "victim"},
		{"form key as qs reads it", `[identifier]=victim&identifier=decoy`, "application/x-www-form-urlencoded", "identifier", "victim"},
		{"form key with a leading dot", `.identifier=victim`, "application/x-www-form-urlencoded", "identifier", "victim"},
		{"multipart without boundary", "--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nalice\r\n--x--", "multipart/form-data", "identifier", ""},
		{"multipart truncated", "--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nalice", "multipart/form-data; boundary=x", "identifier", ""},
		{"empty body", ``, "application/json", "identifier", ""},
		{"no path configured", `{"identifier":"a"}`, "application/json", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, LoginIdentifier([]byte(tc.body), tc.ct, tc.path))
		})
	}
	huge := strings.Repeat("é", 3000)
	got := LoginIdentifier([]byte(`{"identifier":"`+huge+`"}`), "application/json", "identifier")
	assert.LessOrEqual(t, len(got), MaxIdentifierLen)
	assert.True(t, utf8.ValidString(got), "cut on a rune boundary")
}

func FuzzLoginIdentifier(f *testing.F) {
	f.Add([]byte(`{"identifier":"a"}`), "application/json")
	f.Add([]byte(`identifier=%zz`), "application/x-www-form-urlencoded")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nalice\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		got := LoginIdentifier(body, ct, "identifier")
		if len(got) > MaxIdentifierLen {
			t.Fatalf("identifier of %d bytes", len(got))
		}
		// What is sent is always valid JSON when encoded.
		var c protocol.LoginCheck
		if err := json.Unmarshal(EncodeLoginCheck(protocol.LoginCheck{IP: "1.2.3.4", Identifier: got}), &c); err != nil {
			t.Fatalf("encoded check is not JSON: %v", err)
		}
	})
}

func TestEncodeLoginCheck(t *testing.T) {
	in := protocol.LoginCheck{IP: "203.0.113.9", Identifier: "a\"b\x00", UserAgent: "UA"}
	var out protocol.LoginCheck
	require.NoError(t, json.Unmarshal(EncodeLoginCheck(in), &out))
	assert.Equal(t, in, out)
	assert.JSONEq(t, `{"ip":"","identifier":""}`, string(EncodeLoginCheck(protocol.LoginCheck{})), "identifier always sent")
}

func TestParseLoginCheckResponse(t *testing.T) {
	tests := []struct {
		body string
		want protocol.LoginCheckResponse
		err  bool
	}{
		{`{"decision":"allow"}`, protocol.LoginCheckResponse{Decision: "allow"}, false},
		{`{"decision":"deny","reason":"locked","message":"m","retryAfter":900}`, protocol.LoginCheckResponse{Decision: "deny", Reason: "locked", Message: "m", RetryAfter: 900}, false},
		{`{"decision":"deny","reason":"locked","retryAfter":1e12}`, protocol.LoginCheckResponse{Decision: "deny", Reason: "locked", RetryAfter: 7 * 24 * 3600}, false},
		{`{"decision":"deny","reason":"locked","retryAfter":-5}`, protocol.LoginCheckResponse{Decision: "deny", Reason: "locked"}, false},
		{`{"decision":"deny"}`, protocol.LoginCheckResponse{}, true},
		{`{"decision":"maybe"}`, protocol.LoginCheckResponse{}, true},
		{`[]`, protocol.LoginCheckResponse{}, true},
		{`not json`, protocol.LoginCheckResponse{}, true},
	}
	for _, tc := range tests {
		got, err := ParseLoginCheckResponse([]byte(tc.body))
		if tc.err {
			assert.Error(t, err, tc.body)
			continue
		}
		require.NoError(t, err, tc.body)
		assert.Equal(t, tc.want, got, tc.body)
	}
}

func TestLoginRefusal(t *testing.T) {
	eb := func(status int, message, reason string) []byte {
		return []byte(strings.Join([]string{"E", message, reason}, "|"))
	}
	r := LoginRefusal(protocol.LoginCheckResponse{Decision: "deny", Reason: "locked", RetryAfter: 61}, eb)
	assert.Equal(t, 429, r.Status)
	assert.Contains(t, r.Headers, [2]string{"retry-after", "61"})
	assert.Contains(t, r.Headers, [2]string{"x-session-terminated-reason", "locked"})
	assert.JSONEq(t, `{"data":null,"error":{"status":429,"name":"TooManyRequestsError","message":"Too many requests. Please try again later.","details":{"reason":"locked","retryAfter":61}}}`, string(r.Body))
	r0 := LoginRefusal(protocol.LoginCheckResponse{Decision: "deny", Reason: "locked"}, eb)
	assert.Contains(t, r0.Headers, [2]string{"retry-after", "1"}, "never 0")

	p := LoginRefusal(protocol.LoginCheckResponse{Decision: "deny", Reason: "policy", Message: "No Tor"}, eb)
	assert.Equal(t, 403, p.Status)
	assert.Equal(t, "E|No Tor|policy", string(p.Body))
	for _, h := range p.Headers {
		assert.NotEqual(t, "retry-after", h[0])
	}
	u := LoginRefusal(protocol.LoginCheckResponse{Decision: "deny", Reason: "weird"}, eb)
	assert.Equal(t, 403, u.Status)
	assert.Equal(t, "weird", u.Reason)
}
