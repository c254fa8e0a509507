package decide_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

var now = time.Unix(1_800_000_000, 0)

func mustConfig(t testing.TB, js string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(js))
	require.NoError(t, err)
	return c
}

func engine(t testing.TB, js string) *decide.Engine {
	t.Helper()
	e, err := decide.New(mustConfig(t, js))
	require.NoError(t, err)
	return e
}

func state(t testing.TB, changes ...protocol.Change) *revocation.State {
	t.Helper()
	s := revocation.New()
	var cursor int64
	for i := range changes {
		changes[i].Seq = int64(i + 1)
		cursor = int64(i + 1)
	}
	b, err := json.Marshal(protocol.SyncPage{Epoch: "e", Cursor: cursor, Reset: true, Changes: changes})
	require.NoError(t, err)
	_, err = s.ApplyPage(b, now)
	require.NoError(t, err)
	return s
}

func payload(extra string) string {
	p := fmt.Sprintf(`{"sid":"s1","sub":"u1","iat":%d,"exp":%d`, now.Unix()-60, now.Unix()+3600)
	if extra != "" {
		p += "," + extra
	}
	return p + "}"
}

const hsHeader = `{"alg":"HS256","typ":"JWT"}`

func TestDecideNoneMode(t *testing.T) {
	e := engine(t, `{"skip_paths":["/healthz","/public/"]}`)
	good := jwttest.HS256("x", hsHeader, payload(""))
	fpKey := token.FingerprintKey(good)
	noSid := jwttest.HS256("x", hsHeader, `{"sub":"u1"}`)
	st := state(t,
		protocol.Change{Op: protocol.OpRevoke, Key: "sid:revoked", Reason: protocol.ReasonManual},
		protocol.Change{Op: protocol.OpRevoke, Key: token.FingerprintKey(noSid), Reason: protocol.ReasonLogout},
		protocol.Change{Op: protocol.OpRevoke, Key: "sid:noreason"},
		protocol.Change{Op: protocol.OpBlock, User: "blocked-user", Reason: protocol.ReasonBlocked},
		protocol.Change{Op: protocol.OpNotBefore, User: "nb-user", At: now.Unix() - 10},
	)
	tests := []struct {
		name   string
		req    decide.Request
		action decide.Action
		status int
		reason string
		key    string
		user   string
	}{
		{name: "no token passes", req: decide.Request{Path: "/api/x"}, action: decide.Pass},
		{name: "skip path", req: decide.Request{Path: "/healthz", Authorization: "Bearer garbage"}, action: decide.Pass},
		{name: "skip path below", req: decide.Request{Path: "/healthz/live?x=1", Authorization: "Bearer garbage"}, action: decide.Pass},
		{name: "skip slash prefix", req: decide.Request{Path: "/public/a", Authorization: "Bearer garbage"}, action: decide.Pass},
		{name: "not skip: other path with same prefix", req: decide.Request{Path: "/healthzx", Authorization: "Bearer garbage"}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "good token", req: decide.Request{Path: "/api", Authorization: "Bearer " + good}, action: decide.Pass, key: "sid:s1", user: "u1"},
		{name: "good token from cookie", req: decide.Request{Path: "/api", Cookie: "a=b; jwt=" + good}, action: decide.Pass, key: "sid:s1", user: "u1"},
		{name: "no sid: fp key", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sub":"u9"}`)}, action: decide.Pass, key: token.FingerprintKey(jwttest.HS256("x", hsHeader, `{"sub":"u9"}`)), user: "u9"},
		{name: "not a jwt", req: decide.Request{Path: "/api", Authorization: "Bearer abc"}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "bad base64", req: decide.Request{Path: "/api", Authorization: "Bearer a.b=c.d"}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "payload not json", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.Unsigned(hsHeader, "hello") + "sig"}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "header not json", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.B64("x") + "." + jwttest.B64("{}") + ".s"}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "alg none refused", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.Unsigned(`{"alg":"none"}`, payload(""))}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "alg NoNe refused", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.Unsigned(`{"alg":"NoNe"}`, payload(""))}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "string exp", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sub":"u","exp":"soon"}`)}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "64KiB header", req: decide.Request{Path: "/api", Authorization: "Bearer " + strings.Repeat("a", 64<<10)}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken},
		{name: "revoked sid", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sid":"revoked","sub":"u"}`)}, action: decide.Refuse, status: 401, reason: protocol.ReasonManual, key: "sid:revoked", user: "u"},
		{name: "revoked without reason", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sid":"noreason"}`)}, action: decide.Refuse, status: 401, reason: decide.ReasonRevoked, key: "sid:noreason"},
		{name: "revoked fp", req: decide.Request{Path: "/api", Authorization: "Bearer " + noSid}, action: decide.Refuse, status: 401, reason: protocol.ReasonLogout, key: token.FingerprintKey(noSid), user: "u1"},
		{name: "blocked user", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sid":"revoked","sub":"blocked-user"}`)}, action: decide.Refuse, status: 401, reason: protocol.ReasonBlocked, key: "sid:revoked", user: "blocked-user"},
		{name: "not before", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, fmt.Sprintf(`{"sid":"a","sub":"nb-user","iat":%d}`, now.Unix()-11))}, action: decide.Refuse, status: 401, reason: protocol.ReasonNotBefore, key: "sid:a", user: "nb-user"},
		{name: "issued after not-before", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, fmt.Sprintf(`{"sid":"a","sub":"nb-user","iat":%d}`, now.Unix()-10))}, action: decide.Pass, key: "sid:a", user: "nb-user"},
		{name: "no iat with not-before", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sid":"a","sub":"nb-user"}`)}, action: decide.Refuse, status: 401, reason: protocol.ReasonNotBefore, key: "sid:a", user: "nb-user"},
		{name: "expired past leeway", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, fmt.Sprintf(`{"sid":"a","exp":%d}`, now.Unix()-61))}, action: decide.Refuse, status: 401, reason: protocol.ReasonExpired, key: "sid:a"},
		{name: "expired within leeway", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, fmt.Sprintf(`{"sid":"a","exp":%d}`, now.Unix()-60))}, action: decide.Pass, key: "sid:a"},
		{name: "nbf in the future", req: decide.Request{Path: "/api", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, fmt.Sprintf(`{"sid":"a","nbf":%d}`, now.Unix()+120))}, action: decide.Refuse, status: 401, reason: decide.ReasonInvalidToken, key: "sid:a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.LastSync = now
			d := e.Decide(now, &tc.req, st)
			assert.Equal(t, tc.action, d.Action, "%+v", d)
			assert.Equal(t, tc.status, d.Status)
			assert.Equal(t, tc.reason, d.Reason)
			if tc.key != "" {
				assert.Equal(t, tc.key, d.SessionKey)
				assert.Equal(t, protocol.KeyHash(tc.key), d.SessionHash, "the session key's hash comes with it")
			}
			assert.Equal(t, tc.user, d.UserID)
			if d.Action == decide.Refuse {
				assert.NotEmpty(t, d.Message)
				var body protocol.Error
				require.NoError(t, json.Unmarshal(d.Body(), &body))
				assert.Equal(t, tc.status, body.Error.Status)
				assert.Equal(t, tc.reason, body.Error.Details["reason"])
			}
		})
	}
	_ = fpKey
}

func TestDecideRequireTokenAndExpiryOff(t *testing.T) {
	e := engine(t, `{"require_token":true,"enforce_expiry":false}`)
	st := state(t)
	d := e.Decide(now, &decide.Request{Path: "/api", LastSync: now}, st)
	assert.Equal(t, decide.Refuse, d.Action)
	assert.Equal(t, 401, d.Status)
	assert.Equal(t, decide.ReasonMissingToken, d.Reason)
	// skip paths still pass without a token
	d = e.Decide(now, &decide.Request{Path: "/healthz", LastSync: now}, st)
	assert.Equal(t, decide.Pass, d.Action)
	assert.True(t, d.Skipped)
	// expired tokens pass when enforce_expiry is false
	tok := jwttest.HS256("x", hsHeader, `{"sid":"a","exp":1}`)
	d = e.Decide(now, &decide.Request{Path: "/api", Authorization: "Bearer " + tok, LastSync: now}, st)
	assert.Equal(t, decide.Pass, d.Action)
}

func TestDecideStale(t *testing.T) {
	st := state(t)
	tok := "Bearer " + jwttest.HS256("x", hsHeader, payload(""))
	closed := engine(t, `{"stale_policy":"fail_closed","max_staleness":"10s"}`)
	open := engine(t, `{"stale_policy":"fail_open","max_staleness":"10s"}`)

	d := closed.Decide(now, &decide.Request{Path: "/a", Authorization: tok, LastSync: now.Add(-10 * time.Second)}, st)
	assert.Equal(t, decide.Pass, d.Action)
	d = closed.Decide(now, &decide.Request{Path: "/a", Authorization: tok, LastSync: now.Add(-11 * time.Second)}, st)
	assert.Equal(t, decide.Refuse, d.Action)
	assert.Equal(t, 503, d.Status)
	assert.Equal(t, decide.ReasonStale, d.Reason)
	assert.JSONEq(t, `{"data":null,"error":{"status":503,"name":"ServiceUnavailableError","message":"Session service unavailable","details":{"reason":"stale"}}}`, string(d.Body()))
	// no token: not affected
	d = closed.Decide(now, &decide.Request{Path: "/a", LastSync: time.Time{}}, st)
	assert.Equal(t, decide.Pass, d.Action)
	// fail_open keeps deciding from the cache
	d = open.Decide(now, &decide.Request{Path: "/a", Authorization: tok, LastSync: time.Time{}}, st)
	assert.Equal(t, decide.Pass, d.Action)
}

func TestDecideHS256(t *testing.T) {
	e := engine(t, `{"verify":{"mode":"hs256","secret":"s3cret"}}`)
	st := state(t)
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"valid", jwttest.HS256("s3cret", hsHeader, payload("")), true},
		{"wrong secret", jwttest.HS256("other", hsHeader, payload("")), false},
		{"alg RS256 pinned", jwttest.HS256("s3cret", `{"alg":"RS256"}`, payload("")), false},
		{"alg none", jwttest.Unsigned(`{"alg":"none"}`, payload("")), false},
		{"no alg", jwttest.HS256("s3cret", `{"typ":"JWT"}`, payload("")), false},
		{"no signature", jwttest.Unsigned(hsHeader, payload("")), false},
		{"truncated signature", jwttest.HS256("s3cret", hsHeader, payload(""))[:100], false},
		{"tampered payload", tamper(jwttest.HS256("s3cret", hsHeader, payload(""))), false},
		{"kid tolerated", jwttest.HS256("s3cret", `{"alg":"HS256","kid":"k9"}`, payload("")), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + tc.tok, LastSync: now}, st)
			if tc.ok {
				assert.Equal(t, decide.Pass, d.Action, "%v", d.Err)
				assert.Equal(t, "sid:s1", d.SessionKey)
			} else {
				assert.Equal(t, decide.Refuse, d.Action)
				assert.Equal(t, 401, d.Status)
				assert.Equal(t, decide.ReasonInvalidToken, d.Reason)
				assert.Error(t, d.Err)
			}
		})
	}
}

func tamper(tok string) string {
	p, _ := token.Split(tok)
	return p.Header + "." + jwttest.B64(`{"sid":"s1","sub":"admin"}`) + "." + p.Signature
}

func TestDecideRS256AndES256(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rk2, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	st := state(t)
	keysJSON := func(pems ...string) string {
		b, _ := json.Marshal(pems)
		return string(b)
	}
	rs := engine(t, `{"verify":{"mode":"rs256","public_keys":`+keysJSON(jwttest.PublicPEM(&rk2.PublicKey), jwttest.PublicPEM(&rk.PublicKey))+`}}`)
	es := engine(t, `{"verify":{"mode":"es256","public_keys":`+keysJSON(jwttest.PublicPEM(&ek.PublicKey))+`}}`)

	check := func(e *decide.Engine, tok string, ok bool) {
		t.Helper()
		d := e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + tok, LastSync: now}, st)
		if ok {
			assert.Equal(t, decide.Pass, d.Action, "%v", d.Err)
		} else {
			assert.Equal(t, decide.Refuse, d.Action)
			assert.Equal(t, decide.ReasonInvalidToken, d.Reason)
		}
	}
	check(rs, jwttest.RS256(rk, `{"alg":"RS256"}`, payload("")), true) // second key matches
	check(rs, jwttest.RS256(rk, `{"alg":"RS512"}`, payload("")), false)
	check(rs, tamper(jwttest.RS256(rk, `{"alg":"RS256"}`, payload(""))), false)
	// HS256 token signed with the public key's PEM as secret (alg confusion)
	check(rs, jwttest.HS256(jwttest.PublicPEM(&rk.PublicKey), hsHeader, payload("")), false)
	check(rs, jwttest.Unsigned(`{"alg":"none"}`, payload("")), false)

	check(es, jwttest.ES256(ek, `{"alg":"ES256"}`, payload("")), true)
	check(es, jwttest.ES256(ek, `{"alg":"ES384"}`, payload("")), false)
	check(es, tamper(jwttest.ES256(ek, `{"alg":"ES256"}`, payload(""))), false)
	check(es, jwttest.RS256(rk, `{"alg":"ES256"}`, payload("")), false) // wrong signature size
}

func TestDecideMetadataMode(t *testing.T) {
	e := engine(t, `{"verify":{"mode":"jwt_authn_metadata"}}`)
	tok := jwttest.HS256("x", hsHeader, `{"sid":"ignored"}`)
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:m-revoked", Reason: protocol.ReasonIdle})

	d := e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + tok, Metadata: `{"sid":"m1","sub":"7"}`, LastSync: now}, st)
	assert.Equal(t, decide.Pass, d.Action, "%v", d.Err)
	assert.Equal(t, "sid:m1", d.SessionKey, "claims come from metadata")
	assert.Equal(t, "7", d.UserID)

	d = e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + tok, LastSync: now}, st)
	assert.Equal(t, decide.Refuse, d.Action, "token without verified metadata")

	d = e.Decide(now, &decide.Request{Path: "/a", Metadata: `{"sid":"m-revoked"}`, LastSync: now}, st)
	assert.Equal(t, decide.Refuse, d.Action, "metadata without forwarded token is still checked")
	assert.Equal(t, protocol.ReasonIdle, d.Reason)

	d = e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + tok, Metadata: `not json`, LastSync: now}, st)
	assert.Equal(t, decide.Refuse, d.Action)
	assert.Equal(t, decide.ReasonInvalidToken, d.Reason)
}

// TestRoute: each observed route is recognised in every spelling an app's
// router would take for it (a refresh or logout spelled otherwise went
// unchecked and unreported), and only there.
func TestRoute(t *testing.T) {
	e := engine(t, ``)
	for _, tc := range []struct {
		method, path string
		want         decide.Route
	}{
		{"POST", "/api/auth/local", decide.RouteLogin},
		{"POST", "/api/auth/local?x=1", decide.RouteLogin},
		{"POST", "/API/auth/Local/", decide.RouteLogin},
		{"GET", "/api/auth/local", decide.RouteNone},
		{"POST", "/api/auth/refresh", decide.RouteRefresh},
		{"POST", "/api/auth/refresh/", decide.RouteRefresh},
		{"POST", "/API/Auth/REFRESH", decide.RouteRefresh},
		{"POST", "//api/auth//refresh?x=1", decide.RouteRefresh},
		{"POST", "/api/auth/re%66resh", decide.RouteRefresh},
		{"GET", "/api/auth/refresh", decide.RouteNone},
		{"POST", "/api/auth/refreshx", decide.RouteNone},
		{"POST", "/api/auth/logout", decide.RouteLogout},
		{"POST", "/api/auth/logout/", decide.RouteLogout},
		{"POST", "/Api/Auth/Logout", decide.RouteLogout},
		{"POST", "/api/auth/logout/x", decide.RouteNone},
		{"POST", "/api/auth/logout%2f", decide.RouteNone},
	} {
		assert.Equal(t, tc.want, e.Route(tc.method, tc.path), "%s %s", tc.method, tc.path)
	}
}

func TestCheckToken(t *testing.T) {
	e := engine(t, ``)
	opaque := "opaque-refresh-token-123"
	st := state(t,
		protocol.Change{Op: protocol.OpRevoke, Key: token.FingerprintKey(opaque), Reason: protocol.ReasonReuse},
		protocol.Change{Op: protocol.OpRevoke, Key: "sid:r", Reason: protocol.ReasonLogout},
	)
	d := e.CheckToken(now, opaque, st)
	assert.Equal(t, decide.Refuse, d.Action)
	assert.Equal(t, protocol.ReasonReuse, d.Reason)
	d = e.CheckToken(now, jwttest.HS256("other", hsHeader, `{"sid":"r","exp":1}`), st)
	assert.Equal(t, decide.Refuse, d.Action)
	assert.Equal(t, protocol.ReasonLogout, d.Reason)
	d = e.CheckToken(now, "fine-token", st)
	assert.Equal(t, decide.Pass, d.Action)
	d = e.CheckToken(now, jwttest.HS256("other", hsHeader, `{"sid":"ok","exp":1}`), st)
	assert.Equal(t, decide.Pass, d.Action, "expiry is not checked for refresh tokens")
}

func TestErrorBody(t *testing.T) {
	assert.Equal(t, `{"data":null,"error":{"status":401,"name":"UnauthorizedError","message":"Your session was terminated. Please log in again.","details":{"reason":"manual"}}}`,
		string(decide.ErrorBody(401, decide.Message("manual"), "manual")))
	assert.Equal(t, `{"data":null,"error":{"status":401,"name":"UnauthorizedError","message":"Your account has been blocked. Contact support.","details":{"reason":"blocked"}}}`,
		string(decide.ErrorBody(401, decide.Message("blocked"), "blocked")))
	// odd reasons from the feed are escaped
	var v protocol.Error
	require.NoError(t, json.Unmarshal(decide.ErrorBody(401, "a \"quoted\" <msg>\n", "r\\x"), &v))
	assert.Equal(t, "a \"quoted\" <msg>\n", v.Error.Message)
	assert.Equal(t, "r\\x", v.Error.Details["reason"])
}

func TestDecisionDetach(t *testing.T) {
	e := engine(t, ``)
	st := state(t)
	d := e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sid":"first","sub":"u1"}`), LastSync: now}, st)
	kept := d.Detach()
	_ = e.Decide(now, &decide.Request{Path: "/a", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, `{"sid":"other","sub":"u2"}`), LastSync: now}, st)
	assert.Equal(t, "sid:first", kept.SessionKey)
	assert.Equal(t, "first", kept.SessionID)
	assert.Equal(t, "u1", kept.UserID)
}

func TestDecidePassDoesNotAllocate(t *testing.T) {
	e := engine(t, ``)
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:x"})
	req := &decide.Request{Path: "/api/things", Method: "GET", Authorization: "Bearer " + jwttest.HS256("x", hsHeader, payload("")), LastSync: now}
	allocs := testing.AllocsPerRun(200, func() {
		if d := e.Decide(now, req, st); d.Action != decide.Pass {
			t.Fatal(d)
		}
	})
	assert.Zero(t, allocs)
	hs := engine(t, `{"verify":{"mode":"hs256","secret":"x"}}`)
	allocs = testing.AllocsPerRun(200, func() {
		if d := hs.Decide(now, req, st); d.Action != decide.Pass {
			t.Fatal(d)
		}
	})
	assert.Zero(t, allocs)
}

// A cached token found clear skips the lookups only while the state keeps
// its stamp: a page applied, or another State adopted, checks it again.
func TestClearAnswerFollowsTheState(t *testing.T) {
	e := engine(t, ``)
	tok := jwttest.HS256("x", hsHeader, payload(""))
	req := &decide.Request{Path: "/api", Authorization: "Bearer " + tok, LastSync: now}
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:other"})
	for i := 0; i < 3; i++ { // first sighting, then cached and found clear
		require.Equal(t, decide.Pass, e.Decide(now, req, st).Action)
	}
	page := func(seq int64, c protocol.Change) []byte {
		c.Seq = seq
		b, err := json.Marshal(protocol.SyncPage{Epoch: "e", Cursor: seq, Changes: []protocol.Change{c}})
		require.NoError(t, err)
		return b
	}
	_, err := st.ApplyPage(page(2, protocol.Change{Op: protocol.OpBlock, User: "u1"}), now)
	require.NoError(t, err)
	d := e.Decide(now, req, st)
	assert.Equal(t, 401, d.Status, "blocked after the page, though found clear before it")

	// Another State with the same version and the session revoked.
	other := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:s1"})
	fresh := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:other"})
	require.Equal(t, other.Version(), fresh.Version())
	require.Equal(t, decide.Pass, e.Decide(now, req, fresh).Action)
	assert.Equal(t, 401, e.Decide(now, req, other).Status, "a state with the same version but other content")
	// Expiry of an entry cannot make a clear token refused: entries only go.
	assert.Equal(t, decide.Pass, e.Decide(now.Add(time.Hour), req, fresh).Action)
}

// TestMayHoldToken: a request for which MayHoldToken is false is decided
// the same with no revocation state and a stale LastSync under
// fail_closed as with a fresh state that revokes everything (the filter
// skips the stamp check and freshness for it), and never HasToken; one
// that may hold a token is not.
func TestMayHoldToken(t *testing.T) {
	good := jwttest.HS256("x", hsHeader, payload(""))
	st := state(t, protocol.Change{Op: protocol.OpRevoke, Key: "sid:s1", Reason: protocol.ReasonManual})
	for _, cfg := range []string{
		`{"stale_policy":"fail_closed","max_staleness":"10s","token_cookie":"jwt"}`,
		`{"stale_policy":"fail_closed","max_staleness":"10s","token_cookie":"jwt","require_token":true}`,
		`{"stale_policy":"fail_closed","max_staleness":"10s","skip_paths":["/healthz"]}`,
	} {
		e := engine(t, cfg)
		tests := []struct {
			name  string
			hdrs  [][2]string
			token bool // MayHoldToken
			has   bool // Decide finds one (MayHoldToken is conservative)
		}{
			{"none", nil, false, false},
			{"empty authorization", [][2]string{{"authorization", ""}}, false, false},
			{"other cookies", [][2]string{{"cookie", "a=1; b=2"}}, false, false},
			{"skipped path", [][2]string{{":path", "/healthz"}}, false, false},
			{"bearer", [][2]string{{"authorization", "Bearer " + good}}, true, true},
			{"basic", [][2]string{{"authorization", "Basic eDp5"}}, true, false},
			{"token cookie", [][2]string{{"cookie", "a=1; jwt=" + good}}, true, true},
			{"empty then bearer", [][2]string{{"authorization", ""}, {"authorization", "Bearer " + good}}, true, true},
		}
		for _, tt := range tests {
			t.Run(cfg+"/"+tt.name, func(t *testing.T) {
				mk := func() decide.Request {
					r := decide.Request{Method: "GET", Path: "/api"}
					for _, h := range tt.hdrs {
						switch h[0] {
						case ":path":
							r.Path = h[1]
						case "authorization":
							r.AddAuthorization(h[1])
						case "cookie":
							r.AddCookie(h[1], e.Config().TokenCookie)
						}
					}
					return r
				}
				r := mk()
				if !r.MayHoldToken() {
					require.False(t, tt.token)
					stale := e.Decide(now, &r, revocation.New()) // zero LastSync: stale
					r2 := mk()
					r2.LastSync = now
					fresh := e.Decide(now, &r2, st)
					assert.Equal(t, fresh, stale)
					assert.False(t, stale.HasToken)
					return
				}
				require.True(t, tt.token)
				r.LastSync = time.Time{}
				assert.Equal(t, tt.has, e.Decide(now, &r, st).HasToken)
			})
		}
	}
}
