package dashboard

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// Sessions whose login named the user are found by the user's exact
// username, email or documentId (stored sealed), and the names show in the
// list and the export.
func TestSearchAndExportByUserName(t *testing.T) {
	forBackends(t, func(t *testing.T, e *testEnv) {
		e.register(t, protocol.RegisterRequest{UserID: "41", Keys: []string{"sid:named-1"}, IP: "192.0.2.9",
			Route: "/api/auth/local", UserDocumentID: "doc-alice-41", Username: "Alice", Email: "alice@example.com"})
		e.seed(seedOpt{user: "42", ip: "192.0.2.10"})

		c := e.admin()
		for _, term := range []string{"alice", "ALICE@example.com", "doc-alice-41"} {
			r := c.do("GET", "/dashboard/api/sessions?search="+term, nil, nil)
			require.Equal(t, 200, r.status, string(r.body))
			data := r.json(t)["data"].([]any)
			require.Len(t, data, 1, term)
			u := data[0].(map[string]any)["user"].(map[string]any)
			assert.Equal(t, "Alice", u["username"])
			assert.Equal(t, "alice@example.com", u["email"])
			assert.Equal(t, "doc-alice-41", u["documentId"])
		}
		r := c.do("GET", "/dashboard/api/sessions?search=nobody-at-all", nil, nil)
		assert.Empty(t, r.json(t)["data"])

		x := c.do("GET", "/dashboard/api/export?format=csv&search=alice@example.com", nil, nil)
		require.Equal(t, 200, x.status)
		rows, err := csv.NewReader(strings.NewReader(string(x.body))).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.Equal(t, []string{"named-1", "41", "Alice", "alice@example.com"}, rows[1][1:5])
	})
}
