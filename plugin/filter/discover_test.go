package filter_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/token"
)

// TestActivityDescribesTheToken: every activity report carries what
// sessionsvc needs to register a session it does not know.
func TestActivityDescribesTheToken(t *testing.T) {
	eachHost(t, workers, func(t *testing.T, start func(string, map[string]string) (harness, error)) {
		stub := newStub(t)
		h := mustStart(t, start, testConfig(`"last_seen_interval":"1h"`), stub.clusters())
		h.tickAll(t) // the first sync: no start-up hold below
		tokA, tokB := userToken(1, "a"), userToken(2, "")
		ua := [2]string{"user-agent", "Discover/1.0"}
		require.False(t, h.do(t, get("/api/x", append(bearer(tokA), ua), 0)).local)
		require.False(t, h.do(t, get("/api/x", append(bearer(tokB), ua), 0)).local)
		h.tickAll(t)
		h.tickAll(t)
		rec := stub.recorded()
		require.Len(t, rec.activity, 2)
		for _, a := range rec.activity {
			assert.Equal(t, "Discover/1.0", a.UserAgent)
			assert.NotZero(t, a.Exp)
			assert.NotEmpty(t, a.User)
			switch a.Key {
			case "sid:a":
				assert.Equal(t, []string{"sid:a", token.FingerprintKey(tokA)}, a.Keys)
			default:
				assert.Equal(t, token.FingerprintKey(tokB), a.Key)
				assert.Equal(t, []string{a.Key}, a.Keys)
			}
		}
	})
}
