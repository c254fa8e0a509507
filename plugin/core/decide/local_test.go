package decide_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// TestLocalRevocations: a token named by the Engine's local revocations
// (a logout sessionsvc has not recorded) is refused as logged out, by its
// session key or its fingerprint, whatever the state says, also when the
// token was found clear before (the clear answer is cached per state
// stamp, which a local revocation does not change); the refresh route's
// presented token too. Other tokens pass, without allocating.
func TestLocalRevocations(t *testing.T) {
	e := engine(t, ``)
	st := state(t)
	local := revocation.NewLocal(0)
	e.SetLocal(local)
	tok := jwttest.HS256("x", hsHeader, payload(""))
	noSid := jwttest.HS256("x", hsHeader, `{"sub":"u2"}`)
	other := jwttest.HS256("x", hsHeader, `{"sid":"s2","sub":"u1"}`)
	req := func(tok string) *decide.Request {
		return &decide.Request{Path: "/api/x", Method: "GET", Authorization: "Bearer " + tok, LastSync: now}
	}
	for _, tk := range []string{tok, noSid, other} {
		require.Equal(t, decide.Pass, e.Decide(now, req(tk), st).Action, "clear before (and cached so)")
	}

	add := func(keys ...string) {
		require.Equal(t, revocation.LocalAdded, local.Add(revocation.NewLocalEntry(keys, protocol.ReasonLogout, now.Unix()+3600, now.UnixMilli()), now.Unix()))
	}
	add("sid:s1", token.FingerprintKey(tok))
	add(token.FingerprintKey(noSid))
	for _, tk := range []string{tok, noSid} {
		d := e.Decide(now, req(tk), st)
		assert.Equal(t, decide.Refuse, d.Action)
		assert.Equal(t, 401, d.Status)
		assert.Equal(t, protocol.ReasonLogout, d.Reason)
		assert.Equal(t, decide.Message(protocol.ReasonLogout), d.Message)
		assert.Equal(t, decide.Refuse, e.CheckToken(now, tk, st).Action, "as a presented refresh token")
	}
	// Same session, another token: the session key names it.
	sameSession := jwttest.HS256("x", hsHeader, `{"sid":"s1","sub":"u1","iat":1}`)
	assert.Equal(t, decide.Refuse, e.Decide(now, req(sameSession), st).Action)

	r := req(other)
	allocs := testing.AllocsPerRun(200, func() {
		if d := e.DecideView(now, r, st); d.Action != decide.Pass {
			t.Fatal(d)
		}
	})
	assert.Zero(t, allocs)

	// Without local revocations (nil) nothing changes.
	e.SetLocal(nil)
	assert.Equal(t, decide.Pass, e.Decide(now, req(tok), st).Action)
}
