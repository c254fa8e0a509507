package storetest

import (
	"testing"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testAdminTokens(t *testing.T, st store.Store) {
	tok, err := st.CreateAdminToken(ctx(), "ci", "abc123", t0)
	require.NoError(t, err)
	assert.NotZero(t, tok.ID)
	assert.Equal(t, "ci", tok.Name)
	_, err = st.CreateAdminToken(ctx(), "dup", "abc123", t0)
	assert.ErrorIs(t, err, store.ErrConflict)

	f, err := st.FindAdminToken(ctx(), "abc123", t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, tok.ID, f.ID)
	require.NotNil(t, f.LastUsed)
	list, err := st.ListAdminTokens(ctx())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NotNil(t, list[0].LastUsed)
	assert.True(t, list[0].LastUsed.Equal(t0.Add(time.Hour)))

	require.NoError(t, st.RevokeAdminToken(ctx(), tok.ID))
	_, err = st.FindAdminToken(ctx(), "abc123", t0)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, st.RevokeAdminToken(ctx(), 9999), store.ErrNotFound)
	list, err = st.ListAdminTokens(ctx())
	require.NoError(t, err)
	assert.True(t, list[0].Revoked)
}
