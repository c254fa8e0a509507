package filter_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// Issue 12, hostile clients, through the whole filter: natively and on
// plugin.wasm with several workers. Each case passed the filter before.

const hs = `{"alg":"HS256","typ":"JWT"}`

func noneConfig(extra string) string {
	cfg := `{"cluster":"sessionsvc","internal_key":"` + testKey + `","sync_interval":"100ms"`
	if extra != "" {
		cfg += "," + extra
	}
	return cfg + "}"
}

// Item 1: after a logout by fingerprint (a token without a session
// claim, as Strapi issues), no re-spelling of the token passes.
func TestHostileRespelledTokens(t *testing.T) {
	now := time.Now().Unix()
	tok := jwttest.HS256(testSecret, hs, fmt.Sprintf(`{"id":5,"iat":%d,"exp":%d}`, now, now+3600))
	exp := time.Now().Add(time.Hour).Unix()
	for _, cfg := range []string{testConfig(""), noneConfig("")} {
		eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
			h := startedWith(t, start, cfg, protocol.Change{Op: protocol.OpRevoke, Key: token.FingerprintKey(tok), Exp: exp, Reason: protocol.ReasonLogout})
			refusedAs(t, h, get("/api/x", bearer(tok), -1), 401, protocol.ReasonLogout)
			for name, v := range jwttest.Variants(tok) {
				refusedAs(t, h, get("/api/x", bearer(v), -1), 401, "invalid_token", name)
				refusedAs(t, h, get("/api/x", [][2]string{{"cookie", "jwt=" + v}}, -1), 401, "invalid_token", "cookie "+name)
			}
		})
	}
}

// Item 2: repeated Authorization / Cookie headers.
func TestHostileRepeatedTokenHeaders(t *testing.T) {
	revoked, valid := userToken(3, "s-revoked"), userToken(3, "s-valid")
	exp := time.Now().Add(time.Hour).Unix()
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h := startedWith(t, start, testConfig(""), protocol.Change{Op: protocol.OpRevoke, Key: "sid:s-revoked", Exp: exp, Reason: protocol.ReasonManual})
		for name, hdrs := range map[string][][2]string{
			"two Authorization, revoked first": {{"authorization", "Bearer " + revoked}, {"authorization", "Bearer " + valid}},
			"two Authorization, revoked last":  {{"authorization", "Bearer " + valid}, {"authorization", "Bearer " + revoked}},
			"Authorization joined with ','":    {{"authorization", "Bearer " + valid + ",Bearer " + revoked}},
			"two Cookie, revoked first":        {{"cookie", "jwt=" + revoked}, {"cookie", "jwt=" + valid}},
			"two Cookie, revoked last":         {{"cookie", "a=1; jwt=" + valid}, {"cookie", "jwt=" + revoked}},
			"Cookie joined with '; '":          {{"cookie", "jwt=" + revoked + "; jwt=" + valid}},
		} {
			refusedAs(t, h, get("/api/x", hdrs, -1), 401, "invalid_token", name)
		}
		// Header and cookie may differ: the header decides, a revoked or
		// invalid cookie token next to it refuses too.
		refusedAs(t, h, get("/api/x", [][2]string{{"authorization", "Bearer " + valid}, {"cookie", "jwt=" + revoked}}, -1), 401, protocol.ReasonManual, "revoked cookie")
		refusedAs(t, h, get("/api/x", [][2]string{{"authorization", "Bearer " + valid}, {"cookie", "jwt=garbage"}}, -1), 401, "invalid_token", "invalid cookie")
		// Not refused: one token, repeated identically; or header and cookie alike.
		for name, hdrs := range map[string][][2]string{
			"same token twice":        {{"authorization", "Bearer " + valid}, {"authorization", "Bearer " + valid}},
			"header and same cookie":  {{"authorization", "Bearer " + valid}, {"cookie", "a=b; jwt=" + valid}},
			"cookie in second header": {{"cookie", "a=b"}, {"cookie", "jwt=" + valid}},
		} {
			r := h.do(t, get("/api/x", hdrs, -1))
			assert.False(t, r.local, "%s: %s", name, r.body)
			sid, _ := r.upstreamHeader("x-session-id")
			assert.Equal(t, "s-valid", sid, name)
		}
	})
}

// Items 3-5: claims that cannot be trusted as identity, duplicate members,
// iat in the future, issuer/audiences/require_exp.
func TestHostileClaims(t *testing.T) {
	now := time.Now().Unix()
	exp := now + 3600
	exp2 := time.Now().Add(time.Hour).Unix()
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h := startedWith(t, start, testConfig(""), protocol.Change{Op: protocol.OpRevoke, Key: "sid:ended", Exp: exp2, Reason: protocol.ReasonManual})
		for name, payload := range map[string]string{
			"sid with CRLF":     fmt.Sprintf(`{"sid":"a\r\nx-user-id: 1","sub":"2","exp":%d}`, exp),
			"sub with NUL":      fmt.Sprintf(`{"sid":"s","sub":"2\u0000","exp":%d}`, exp),
			"sid 1000 bytes":    fmt.Sprintf(`{"sid":"%s","exp":%d}`, strings.Repeat("s", 1000), exp),
			"two sid":           fmt.Sprintf(`{"sid":"fresh","sid":"ended","exp":%d}`, exp),
			"two sid, reversed": fmt.Sprintf(`{"sid":"ended","sid":"fresh","exp":%d}`, exp),
			"two sub":           fmt.Sprintf(`{"sid":"x","sub":"1","sub":"2","exp":%d}`, exp),
			"iat in the future": fmt.Sprintf(`{"sid":"x","iat":%d,"exp":%d}`, now+3600, exp+3600),
		} {
			refusedAs(t, h, get("/api/x", bearer(jwttest.HS256(testSecret, hs, payload)), -1), 401, "invalid_token", name)
		}
		refusedAs(t, h, get("/api/x", bearer(jwttest.HS256(testSecret, `{"alg":"HS256","alg":"none"}`, `{"sid":"x"}`)), -1), 401, "invalid_token", "two alg")
		assert.False(t, h.do(t, get("/api/x", bearer(jwttest.HS256(testSecret, hs, fmt.Sprintf(`{"sid":"x","iat":%d}`, now+30))), -1)).local, "iat within the leeway")
	})
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h := startedWith(t, start, noneConfig(`"require_exp":true`+
			`,"verify":{"mode":"hs256","secret":"`+testSecret+`","issuer":"https://idp","audiences":["api"]}`))
		ok := fmt.Sprintf(`{"sid":"x","iss":"https://idp","aud":["web","api"],"exp":%d}`, exp)
		assert.False(t, h.do(t, get("/api/x", bearer(jwttest.HS256(testSecret, hs, ok)), -1)).local)
		for name, payload := range map[string]string{
			"wrong issuer":   fmt.Sprintf(`{"sid":"x","iss":"https://evil","aud":"api","exp":%d}`, exp),
			"wrong audience": fmt.Sprintf(`{"sid":"x","iss":"https://idp","aud":"web","exp":%d}`, exp),
			"no exp":         `{"sid":"x","iss":"https://idp","aud":"api"}`,
		} {
			refusedAs(t, h, get("/api/x", bearer(jwttest.HS256(testSecret, hs, payload)), -1), 401, "invalid_token", name)
		}
	})
}

// Item 2 with header names in another case (a host that does not lower-case
// them): still every entry counts.
func TestHostileRepeatedHeadersAnyCase(t *testing.T) {
	revoked, valid := userToken(4, "s4-revoked"), userToken(4, "s4-valid")
	exp := time.Now().Add(time.Hour).Unix()
	eachHost(t, 2, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		h := startedWith(t, start, testConfig(""), protocol.Change{Op: protocol.OpRevoke, Key: "sid:s4-revoked", Exp: exp, Reason: protocol.ReasonManual})
		refusedAs(t, h, get("/api/x", [][2]string{{"authorization", "Bearer " + valid}, {"Authorization", "Bearer " + revoked}}, -1), 401, "invalid_token")
		refusedAs(t, h, get("/api/x", [][2]string{{"Cookie", "jwt=" + revoked}}, -1), 401, protocol.ReasonManual)
	})
}
