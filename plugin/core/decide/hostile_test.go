package decide_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// Issue 12, hostile clients: each case failed before (passed the filter)
// and is refused now.

func bearerReq(tok string) *decide.Request {
	return &decide.Request{Path: "/api/x", Method: "GET", Authorization: "Bearer " + tok, LastSync: now}
}

func assertInvalid(t *testing.T, d decide.Decision, msg ...any) {
	t.Helper()
	assert.Equal(t, decide.Refuse, d.Action, msg...)
	assert.Equal(t, 401, d.Status, msg...)
	assert.Equal(t, decide.ReasonInvalidToken, d.Reason, msg...)
}

// Item 1: a revoked token re-spelled (padding, unused bits, other alphabet,
// whitespace) is refused: it never gets a fingerprint of its own.
func TestHostileNonCanonicalEncodings(t *testing.T) {
	for _, mode := range []string{`{}`, `{"verify":{"mode":"hs256","secret":"s3cret"}}`} {
		e := engine(t, mode)
		// No session claim: revoked by fingerprint (Strapi's own tokens).
		noSid := jwttest.HS256("s3cret", hsHeader, `{"id":7,"iat":1799999000,"exp":1800003600}`)
		withSid := jwttest.HS256("s3cret", hsHeader, payload(""))
		st := state(t,
			protocol.Change{Op: protocol.OpRevoke, Key: token.FingerprintKey(noSid), Reason: protocol.ReasonLogout},
			protocol.Change{Op: protocol.OpRevoke, Key: "sid:s1", Reason: protocol.ReasonManual},
		)
		d := e.Decide(now, bearerReq(noSid), st)
		require.Equal(t, protocol.ReasonLogout, d.Reason, mode)
		for _, tok := range []string{noSid, withSid} {
			for name, v := range jwttest.Variants(tok) {
				d := e.Decide(now, bearerReq(v), st)
				assertInvalid(t, d, "%s %s: %v", mode, name, d.Err)
				// and as the cookie
				d = e.Decide(now, &decide.Request{Path: "/", Cookie: "jwt=" + v, LastSync: now}, st)
				if strings.ContainsAny(v, " \n;") {
					continue // not one cookie value
				}
				assertInvalid(t, d, "cookie %s %s", mode, name)
			}
		}
	}
}

// Item 1, refresh route: a re-spelled revoked refresh token is refused.
func TestHostileNonCanonicalRefreshToken(t *testing.T) {
	e := engine(t, ``)
	rt := jwttest.HS256("k", hsHeader, `{"id":7,"type":"refresh"}`)
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: token.FingerprintKey(rt), Reason: protocol.ReasonReuse})
	assert.Equal(t, protocol.ReasonReuse, e.CheckToken(now, rt, st).Reason)
	for name, v := range jwttest.Variants(rt) {
		if strings.ContainsAny(v, " \n+/") {
			continue // not a JWT spelling: an opaque token, checked by its own fingerprint
		}
		assertInvalid(t, e.CheckToken(now, v, st), name)
	}
	assert.Equal(t, decide.Pass, e.CheckToken(now, "opaque.refresh.t0ken=", st).Action, "opaque tokens are not JWTs")
}

// Item 1, jwt_authn mode: the filter does not decode the token, but its
// fingerprint must still name it.
func TestHostileNonCanonicalMetadataMode(t *testing.T) {
	e := engine(t, `{"verify":{"mode":"jwt_authn_metadata"}}`)
	tok := jwttest.HS256("x", hsHeader, `{"id":7}`)
	st := state(t)
	req := bearerReq(tok)
	req.Metadata = `{"id":7}`
	require.Equal(t, decide.Pass, e.Decide(now, req, st).Action)
	for name, v := range jwttest.Variants(tok) {
		req := bearerReq(v)
		req.Metadata = `{"id":7}`
		assertInvalid(t, e.Decide(now, req, st), name)
	}
}

func reqFrom(auth, cookies []string) *decide.Request {
	r := &decide.Request{Path: "/api/x", Method: "GET", LastSync: now}
	for _, a := range auth {
		r.AddAuthorization(a)
	}
	for _, c := range cookies {
		r.AddCookie(c, "jwt")
	}
	return r
}

// Item 2: the filter never decides on a different token than the app may use.
func TestHostileRepeatedHeaders(t *testing.T) {
	e := engine(t, `{"verify":{"mode":"hs256","secret":"k"}}`)
	revoked := jwttest.HS256("k", hsHeader, payload(""))
	valid := jwttest.HS256("k", hsHeader, strings.Replace(payload(""), `"s1"`, `"s2"`, 1))
	expired := jwttest.HS256("k", hsHeader, `{"sid":"s3","exp":1}`)
	garbage := "not-a-token"
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:s1", Reason: protocol.ReasonManual})
	tests := []struct {
		name    string
		auth    []string
		cookies []string
		reason  string // "" passes
	}{
		{"two Authorization, revoked first", []string{"Bearer " + revoked, "Bearer " + valid}, nil, decide.ReasonInvalidToken},
		{"two Authorization, revoked last", []string{"Bearer " + valid, "Bearer " + revoked}, nil, decide.ReasonInvalidToken},
		{"two Authorization, valid both", []string{"Bearer " + valid, "bearer  " + valid}, nil, ""},
		{"Authorization joined by the codec", []string{"Bearer " + valid + ",Bearer " + revoked}, nil, decide.ReasonInvalidToken},
		{"Authorization joined, same token", []string{"Bearer " + valid + ", Bearer " + valid}, nil, decide.ReasonInvalidToken},
		{"Basic then Bearer", []string{"Basic dXNlcjpw", "Bearer " + revoked}, nil, decide.ReasonInvalidToken},
		{"Bearer then Basic", []string{"Bearer " + valid, "Basic dXNlcjpw"}, nil, decide.ReasonInvalidToken},
		{"two Basic (no token)", []string{"Basic a", "Basic b"}, nil, ""},
		{"two Cookie headers with the token, revoked first", nil, []string{"jwt=" + revoked, "jwt=" + valid}, decide.ReasonInvalidToken},
		{"two Cookie headers with the token, revoked last", nil, []string{"a=1; jwt=" + valid, "jwt=" + revoked + "; b=2"}, decide.ReasonInvalidToken},
		{"cookies joined with '; '", nil, []string{"jwt=" + revoked + "; jwt=" + valid}, decide.ReasonInvalidToken},
		{"empty cookie then a token", nil, []string{"jwt=; jwt=" + revoked}, decide.ReasonInvalidToken},
		{"same cookie twice", nil, []string{"jwt=" + valid, "x=1; jwt=" + valid}, ""},
		{"cookie in the second header only", nil, []string{"a=1", "jwt=" + valid}, ""},
		{"revoked cookie in the second header only", nil, []string{"a=1", "jwt=" + revoked}, protocol.ReasonManual},
		{"header valid, cookie revoked", []string{"Bearer " + valid}, []string{"jwt=" + revoked}, protocol.ReasonManual},
		{"header valid, cookie invalid", []string{"Bearer " + valid}, []string{"jwt=" + garbage}, decide.ReasonInvalidToken},
		{"header valid, cookie forged", []string{"Bearer " + valid}, []string{"jwt=" + jwttest.HS256("other", hsHeader, payload(""))}, decide.ReasonInvalidToken},
		{"header valid, cookie expired", []string{"Bearer " + valid}, []string{"jwt=" + expired}, ""},
		{"header valid, same cookie", []string{"Bearer " + valid}, []string{"jwt=" + valid}, ""},
		{"header revoked, cookie valid", []string{"Bearer " + revoked}, []string{"jwt=" + valid}, protocol.ReasonManual},
		{"header valid, two different cookies", []string{"Bearer " + valid}, []string{"jwt=" + valid + "; jwt=" + revoked}, decide.ReasonInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(now, reqFrom(tc.auth, tc.cookies), st)
			if tc.reason == "" {
				assert.Equal(t, decide.Pass, d.Action, "%s %v", d.Reason, d.Err)
				return
			}
			assert.Equal(t, decide.Refuse, d.Action)
			assert.Equal(t, tc.reason, d.Reason, "%v", d.Err)
		})
	}
	// The header token decides what the app is told (identity), the cookie
	// only refuses.
	d := e.Decide(now, reqFrom([]string{"Bearer " + valid}, []string{"jwt=" + expired}), st)
	require.Equal(t, decide.Pass, d.Action)
	assert.Equal(t, "sid:s2", d.SessionKey)
	assert.Equal(t, token.SourceHeader, d.Source)
}

// Item 2: the per-request path stays allocation-free with repeated headers.
func TestRepeatedHeadersDoNotAllocate(t *testing.T) {
	e := engine(t, ``)
	st := state(t)
	tok := jwttest.HS256("x", hsHeader, payload(""))
	other := jwttest.HS256("x", hsHeader, `{"sid":"s9","sub":"u9"}`)
	auth, c1, c2 := "Bearer "+tok, "a=b; jwt="+other, "jwt="+other
	allocs := testing.AllocsPerRun(200, func() {
		r := decide.Request{Path: "/api/x", Method: "GET", LastSync: now}
		r.AddAuthorization(auth)
		r.AddAuthorization(auth)
		r.AddCookie(c1, "jwt")
		r.AddCookie(c2, "jwt")
		if d := e.Decide(now, &r, st); d.Action != decide.Pass {
			t.Fatal(d.Reason, d.Err)
		}
	})
	assert.Zero(t, allocs)
}

// Item 3: claim values used as identity or keys are printable and bounded.
func TestHostileClaimValues(t *testing.T) {
	e := engine(t, `{"verify":{"mode":"hs256","secret":"k"}}`)
	st := state(t)
	for name, p := range map[string]string{
		"sid CRLF":       `{"sid":"a\r\nx-user-id: admin","sub":"u"}`,
		"sid LF":         `{"sid":"a\nb","sub":"u"}`,
		"sub NUL":        `{"sid":"s","sub":"u\u0000"}`,
		"id DEL":         "{\"id\":\"7\x7f\"}",
		"sessionId C1":   `{"sessionId":"s\u0085"}`,
		"jti fallback":   `{"sid":"ok","jti":"bad\tvalue"}`,
		"sid too long":   `{"sid":"` + strings.Repeat("s", 257) + `"}`,
		"sub not UTF-8":  "{\"sub\":\"\xff\xfe\"}",
		"sub too long":   `{"sub":"` + strings.Repeat("u", 1000) + `"}`,
		"escaped CR sub": `{"sub":"a\u000db"}`,
	} {
		d := e.Decide(now, bearerReq(jwttest.HS256("k", hsHeader, p)), st)
		assertInvalid(t, d, name)
	}
	d := e.Decide(now, bearerReq(jwttest.HS256("k", hsHeader, `{"sid":"`+strings.Repeat("s", 256)+`","sub":"Zoë ✓"}`)), st)
	assert.Equal(t, decide.Pass, d.Action, "%v", d.Err)
	assert.Equal(t, "Zoë ✓", d.UserID)
}

// Item 4: duplicate member names hide one value behind another.
func TestHostileDuplicateMembers(t *testing.T) {
	e := engine(t, `{"verify":{"mode":"hs256","secret":"k"}}`)
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:terminated", Reason: protocol.ReasonManual})
	for name, tok := range map[string]string{
		"two sid, fresh first":      jwttest.HS256("k", hsHeader, `{"sid":"fresh","sid":"terminated"}`),
		"two sid, terminated first": jwttest.HS256("k", hsHeader, `{"sid":"terminated","sid":"fresh"}`),
		"two sub":                   jwttest.HS256("k", hsHeader, `{"sid":"x","sub":"a","sub":"b"}`),
		"sid escaped twice":         jwttest.HS256("k", hsHeader, `{"sid":"fresh","s\u0069d":"terminated"}`),
		"two exp":                   jwttest.HS256("k", hsHeader, `{"sid":"x","exp":1,"exp":9999999999}`),
		"two alg in header":         jwttest.HS256("k", `{"alg":"HS256","alg":"HS256"}`, `{"sid":"x"}`),
	} {
		assertInvalid(t, e.Decide(now, bearerReq(tok), st), name)
	}
	// in jwt_authn mode the payload comes from metadata: refused too
	m := engine(t, `{"verify":{"mode":"jwt_authn_metadata"}}`)
	req := &decide.Request{Path: "/a", Metadata: `{"sid":"fresh","sid":"terminated"}`, LastSync: now}
	assertInvalid(t, m.Decide(now, req, st))
}

// Item 5: iat in the future, issuer, audiences, require_exp.
func TestHostileClaimsChecks(t *testing.T) {
	st := state(t)
	e := engine(t, `{"verify":{"mode":"hs256","secret":"k"}}`)
	for _, tc := range []struct {
		iat  int64
		pass bool
	}{{now.Unix() - 3600, true}, {now.Unix() + decide.ExpiryLeeway, true}, {now.Unix() + decide.ExpiryLeeway + 1, false}, {now.Unix() + 86400*365, false}} {
		d := e.Decide(now, bearerReq(jwttest.HS256("k", hsHeader, fmt.Sprintf(`{"sid":"s","iat":%d}`, tc.iat))), st)
		assert.Equal(t, tc.pass, d.Action == decide.Pass, "iat %d: %v", tc.iat-now.Unix(), d.Err)
		if !tc.pass {
			assert.Equal(t, decide.ReasonInvalidToken, d.Reason)
		}
	}
	// iat is checked even with enforce_expiry off: it dates the token
	// against not-before cuts.
	off := engine(t, `{"enforce_expiry":false,"verify":{"mode":"hs256","secret":"k"}}`)
	assertInvalid(t, off.Decide(now, bearerReq(jwttest.HS256("k", hsHeader, fmt.Sprintf(`{"iat":%d}`, now.Unix()+600))), st))

	strict := engine(t, `{"require_exp":true,"verify":{"mode":"hs256","secret":"k","issuer":"https://idp","audiences":["api","admin"]}}`)
	exp := now.Unix() + 600
	for name, tc := range map[string]struct {
		payload string
		pass    bool
	}{
		"all good":           {fmt.Sprintf(`{"iss":"https://idp","aud":"api","exp":%d}`, exp), true},
		"aud array":          {fmt.Sprintf(`{"iss":"https://idp","aud":["web","admin"],"exp":%d}`, exp), true},
		"wrong iss":          {fmt.Sprintf(`{"iss":"https://evil","aud":"api","exp":%d}`, exp), false},
		"no iss":             {fmt.Sprintf(`{"aud":"api","exp":%d}`, exp), false},
		"wrong aud":          {fmt.Sprintf(`{"iss":"https://idp","aud":"web","exp":%d}`, exp), false},
		"aud array no match": {fmt.Sprintf(`{"iss":"https://idp","aud":["web"],"exp":%d}`, exp), false},
		"no aud":             {fmt.Sprintf(`{"iss":"https://idp","exp":%d}`, exp), false},
		"no exp":             {`{"iss":"https://idp","aud":"api"}`, false},
		"iss not a string":   {fmt.Sprintf(`{"iss":1,"aud":"api","exp":%d}`, exp), false},
	} {
		d := strict.Decide(now, bearerReq(jwttest.HS256("k", hsHeader, tc.payload)), st)
		assert.Equal(t, tc.pass, d.Action == decide.Pass, "%s: %v", name, d.Err)
		if !tc.pass {
			assert.Equal(t, decide.ReasonInvalidToken, d.Reason, name)
		}
	}
	// without the options, none of this is required
	assert.Equal(t, decide.Pass, e.Decide(now, bearerReq(jwttest.HS256("k", hsHeader, `{"iss":"x","aud":"y"}`)), st).Action)
}

var _ = revocation.New
