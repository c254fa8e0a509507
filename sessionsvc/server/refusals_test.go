package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestRefusalsRecorded: the login-protection routes record each refused
// login under its reason (the dashboard's analytics) — wrong credentials
// also with lockout off (nothing counts failures then), lockout for a lock
// and for attempts in flight at the threshold — while the lockout
// counters decide as before.
func TestRefusalsRecorded(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnvWithStore(t, b.Open(t))
			refusals := func() map[string]int {
				t.Helper()
				by, err := e.st.CountLoginRefusals(t.Context(), e.clock.Now().Add(-time.Hour), e.clock.Now().Add(time.Hour))
				require.NoError(t, err)
				return by
			}
			// Attempts in flight: 5 admitted for one identifier, the 6th refused (busy).
			for range 5 {
				require.Equal(t, protocol.DecisionAllow, e.check("192.0.2.10", "ann").body["decision"])
			}
			busy := e.check("192.0.2.10", "ann")
			require.Equal(t, protocol.ReasonLocked, busy.body["reason"])
			assert.Equal(t, map[string]int{store.RefusalCredentials: 0, store.RefusalLockout: 1, store.RefusalBlocked: 0, store.RefusalPolicy: 0}, refusals())
			// Their failures: 5 wrong credentials, the identifier locked.
			for range 5 {
				require.Equal(t, 200, e.fail("192.0.2.10", "ann").status)
			}
			require.Equal(t, protocol.ReasonLocked, e.check("192.0.2.11", "ann").body["reason"])
			assert.Equal(t, map[string]int{store.RefusalCredentials: 5, store.RefusalLockout: 2, store.RefusalBlocked: 0, store.RefusalPolicy: 0}, refusals())

			// Lockout off: a failure locks nothing and is still a refused login.
			r := e.admin("PUT", "/magic-sessionmanager/settings", map[string]any{"maxFailedLogins": 0, "ipMaxFailedLogins": 0})
			require.Equal(t, 200, r.status, string(r.raw))
			for range 7 {
				f := e.fail("192.0.2.20", "ben")
				require.Equal(t, 200, f.status, string(f.raw))
				assert.Equal(t, false, f.body["locked"])
			}
			require.Equal(t, protocol.DecisionAllow, e.check("192.0.2.20", "ben").body["decision"])
			assert.Equal(t, map[string]int{store.RefusalCredentials: 12, store.RefusalLockout: 2, store.RefusalBlocked: 0, store.RefusalPolicy: 0}, refusals())
			n, err := e.st.CountFailedLogins(t.Context(), "ip:192.0.2.20", e.clock.Now().Add(-time.Hour))
			require.NoError(t, err)
			assert.Equal(t, 7, n, "and on the overview's failed-login record")
		})
	}
}
