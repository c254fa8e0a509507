package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The development admin token survives a restart: the second start reads
// the token the first one wrote, next to the SQLite file, owner-only.
func TestDevAdminTokenKept(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "sub", "meshsession.db")
	a, err := devAdminToken(url)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(a), 16)
	b, err := devAdminToken(url)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	fi, err := os.Stat(filepath.Join(dir, "sub", devTokenFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	// Another directory, another token.
	c, err := devAdminToken("sqlite://" + filepath.Join(dir, "other.db"))
	require.NoError(t, err)
	assert.NotEqual(t, a, c)
}
