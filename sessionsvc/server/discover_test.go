package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

const uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"

func TestActivityDiscoversUnknownTokens(t *testing.T) {
	e := newEnv(t)
	known := token(t, "carol", "s-known", nil)
	e.login("carol", known, "")
	now := e.clock.Now()
	exp := now.Add(time.Hour).Unix()
	batch := []protocol.Activity{
		// A token no session knows: discovered.
		{Key: "sid:s-new", User: "dave", At: now.Add(-time.Minute).UnixMilli(), IP: "10.0.0.7",
			Keys: []string{"sid:s-new", "fp:new-fp"}, UserAgent: uaFirefox, Exp: exp},
		// A registered one: its mark only.
		{Key: "sid:s-known", User: "carol", At: now.UnixMilli(), Keys: []string{"sid:s-known"}},
		// Malformed descriptions are dropped, not the batch.
		{Key: "sid:odd", User: "eve", At: now.UnixMilli(), Keys: []string{"sid:other"}},
		{Key: "sid:bad", User: "eve", At: now.UnixMilli(), Keys: []string{"sid:bad", "nope:x"}},
		{Key: "sid:noip", User: "eve", At: now.UnixMilli(), IP: "not-an-ip", Keys: []string{"sid:noip"}},
		{Key: "sid:expired", User: "eve", At: now.UnixMilli(), Keys: []string{"sid:expired"}, Exp: now.Add(-time.Minute).Unix()},
	}
	r := e.internal("POST", protocol.PathActivity, batch)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, float64(6), r.body["accepted"])

	s, err := e.st.FindSessionByKeys(t.Context(), []string{"fp:new-fp"})
	require.NoError(t, err)
	assert.True(t, s.Discovered())
	assert.Equal(t, "dave", s.UserID)
	assert.Equal(t, "10.0.0.7", s.IP)
	assert.Equal(t, uaFirefox, s.UserAgent)
	assert.Equal(t, "desktop", s.DeviceType)
	assert.Contains(t, s.BrowserName, "Firefox")
	assert.True(t, s.LoginTime.Equal(now.Add(-time.Minute)), "first seen: %v", s.LoginTime)
	assert.Equal(t, exp, s.ExpiresAt.Unix())
	for _, k := range []string{"sid:odd", "sid:other", "sid:bad", "sid:noip", "sid:expired"} {
		_, err := e.st.FindSessionByKeys(t.Context(), []string{k})
		assert.ErrorIs(t, err, store.ErrNotFound, k)
	}

	// Listed to its user and to admins, terminable like any other.
	r = e.admin("GET", "/magic-sessionmanager/user/dave/sessions", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Contains(t, string(r.raw), s.ID)
	r = e.admin("POST", "/magic-sessionmanager/sessions/"+s.ID+"/terminate", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	got, err := e.st.GetSession(t.Context(), s.ID)
	require.NoError(t, err)
	assert.False(t, got.Active)

	// Once ended, the same token is never rediscovered.
	r = e.internal("POST", protocol.PathActivity, batch[:1])
	require.Equal(t, 200, r.status)
	page, err := e.st.ListSessions(t.Context(), store.SessionQuery{UserID: "dave"})
	require.NoError(t, err)
	assert.Equal(t, 1, page.Total)
}

type policyEnricher struct {
	fakeEnricher
	active bool
}

func (p *policyEnricher) LoginPolicyActive() bool { return p.active }

func TestUnreadableLogin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enricher *policyEnricher
		want     string
	}{
		{"no enricher: no policy", nil, protocol.DecisionAllow},
		{"no rule active", &policyEnricher{}, protocol.DecisionAllow},
		{"a rule active", &policyEnricher{active: true}, protocol.DecisionDeny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tc.enricher != nil {
					c.Enricher = tc.enricher
				}
			})
			r := e.internal("POST", protocol.PathUnreadable, protocol.UnreadableLogin{IP: "10.0.0.1", Status: 200, Why: protocol.UnreadableCompressed})
			require.Equal(t, 200, r.status, string(r.raw))
			assert.Equal(t, tc.want, r.body["decision"])
			if tc.want == protocol.DecisionDeny {
				assert.Equal(t, protocol.ReasonPolicy, r.body["reason"])
			}
		})
	}
	e := newEnv(t)
	for _, bad := range []protocol.UnreadableLogin{{IP: "x", Why: protocol.UnreadableNoToken}, {IP: "10.0.0.1", Why: "because"}} {
		r := e.internal("POST", protocol.PathUnreadable, bad)
		assert.Equal(t, 400, r.status, string(r.raw))
	}
}

// TestActivityDiscoversLargeBatches: a batch larger than one lookup is
// discovered in chunks.
func TestActivityDiscoversLargeBatches(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	var batch []protocol.Activity
	for i := 0; i < 1100; i++ {
		k := fmt.Sprintf("sid:big-%d", i)
		batch = append(batch, protocol.Activity{Key: k, User: "u", At: now.UnixMilli(), Keys: []string{k}})
	}
	r := e.internal("POST", protocol.PathActivity, batch)
	require.Equal(t, 200, r.status, string(r.raw))
	page, err := e.st.ListSessions(t.Context(), store.SessionQuery{UserID: "u", Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 1100, page.Total)
}
