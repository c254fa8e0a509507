package service

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// TestTokenCLIAudited: creating and revoking an admin token with the CLI
// leaves token.created and token.revoked in the audit trail.
func TestTokenCLIAudited(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	env := testenv.Getenv(map[string]string{"DATABASE_URL": db})
	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"token", "create", "--name", "ci"}, env, &out, io.Discard, Hooks{}))
	require.NoError(t, Run(context.Background(), []string{"token", "revoke", "1"}, env, &out, io.Discard, Hooks{}))
	st, err := store.Open(context.Background(), db, nil)
	require.NoError(t, err)
	defer st.Close()
	list, err := st.ListAudit(context.Background(), 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "token.revoked", list[0].Event)
	assert.Equal(t, "token.created", list[1].Event)
	assert.Equal(t, "1", list[1].Subject)
	assert.Contains(t, list[1].Actor, "cli")
	assert.Contains(t, string(list[1].Detail), `"name":"ci"`)
}
