package store

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSearchDocIsIndexed: a search by SearchDocSQLite reads the joined
// columns from sessions_login_time_id (migration 0100), so the expression
// there and SearchDocSQLite are the same; SQLite would otherwise join the
// columns of every table row the page walks.
func TestSearchDocIsIndexed(t *testing.T) {
	ctx := context.Background()
	_, s := openInternalStore(t)
	rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id FROM sessions WHERE `+SearchDocSQLite+
		` LIKE ? ESCAPE '\' ORDER BY login_time DESC, id DESC LIMIT 10`, "%x%")
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	assert.Contains(t, strings.Join(plan, "; "), "COVERING INDEX sessions_login_time_id", "plan: %q", plan)
}

// TestAppIDsOnOneConnection: the app ids of a 1,000-session page are read
// on one reader connection, the one the page was read on: read at once on
// a second one, they left the next page to a connection that had not read
// it (a first read there is 30–50 ms slower at 1M sessions).
func TestAppIDsOnOneConnection(t *testing.T) {
	ctx := context.Background()
	st, s := openInternalStore(t)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = NewSessionID()
	}
	_, err := st.SessionAppIDs(ctx, ids)
	require.NoError(t, err)
	assert.Equal(t, 1, s.r.Stats().OpenConnections)
}
