package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdminActionsAudited: each state-changing admin route that succeeds
// writes one audit event naming the token, the subject and the address;
// refused and failed calls and reads write none.
func TestAdminActionsAudited(t *testing.T) {
	e := newEnv(t)
	s1 := e.login("alice", token(t, "alice", "s1", nil), "")
	e.login("bob", token(t, "bob", "s2", nil), "")
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		event        string
		subject      string
	}{
		{"GET", "/magic-sessionmanager/sessions", nil, 200, "", ""},
		{"POST", "/magic-sessionmanager/sessions/" + s1 + "/terminate", nil, 200, AuditSessionTerminated, s1},
		{"POST", "/magic-sessionmanager/sessions/sess_nope/terminate", nil, 200, "", ""}, // upstream's 200: nothing done
		{"DELETE", "/magic-sessionmanager/sessions/" + s1, nil, 200, AuditSessionDeleted, s1},
		{"POST", "/magic-sessionmanager/user/bob/toggle-block", map[string]any{"blocked": true}, 200, AuditUserBlocked, "bob"},
		{"POST", "/magic-sessionmanager/user/bob/toggle-block", map[string]any{"blocked": false}, 200, AuditUserUnblocked, "bob"},
		{"POST", "/magic-sessionmanager/user/bob/terminate-all", nil, 200, AuditUserTerminatedAll, "bob"},
		{"POST", "/magic-sessionmanager/sessions/clean-inactive", nil, 200, AuditSessionsPurged, ""},
		{"PUT", "/magic-sessionmanager/settings?strict=1", map[string]any{"inactivityTimeout": 0}, 400, "", ""},
		{"PUT", "/magic-sessionmanager/settings", map[string]any{"inactivityTimeout": 30}, 200, AuditSettingsChanged, ""},
	} {
		before, err := e.st.ListAudit(t.Context(), 0, 100)
		require.NoError(t, err)
		r := e.admin(tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.raw)
		after, err := e.st.ListAudit(t.Context(), 0, 100)
		require.NoError(t, err)
		if tc.event == "" {
			assert.Len(t, after, len(before), "%s %s: no audit event", tc.method, tc.path)
			continue
		}
		require.Len(t, after, len(before)+1, "%s %s", tc.method, tc.path)
		ev := after[0]
		assert.Equal(t, tc.event, ev.Event)
		assert.Equal(t, tc.subject, ev.Subject)
		assert.Equal(t, "test", ev.Actor, "the admin token's name")
		assert.Contains(t, string(ev.Detail), `"ip":"127.0.0.1"`)
	}
	// An unauthenticated call writes nothing.
	before, err := e.st.ListAudit(t.Context(), 0, 100)
	require.NoError(t, err)
	assert.Equal(t, 401, e.do("POST", "/magic-sessionmanager/user/bob/terminate-all", nil, nil).status)
	after, err := e.st.ListAudit(t.Context(), 0, 100)
	require.NoError(t, err)
	assert.Len(t, after, len(before))
}
