package authflow_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/protocol"
)

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
	var back protocol.UnreadableLogin
	require.NoError(t, json.Unmarshal(authflow.EncodeUnreadable(u), &back))
	assert.Equal(t, u, back)

	ans, err := authflow.ParseUnreadableResponse([]byte(`{"decision":"deny","reason":"policy","message":"no"}`))
	require.NoError(t, err)
	assert.Equal(t, protocol.UnreadableLoginResponse{Decision: "deny", Reason: "policy", Message: "no"}, ans)
	for _, bad := range []string{``, `[]`, `{"decision":"maybe"}`, `{}`} {
		_, err := authflow.ParseUnreadableResponse([]byte(bad))
		assert.Error(t, err, bad)
	}
}
