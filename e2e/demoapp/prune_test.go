package demoapp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Expired refresh tokens, access-token records and sessions are dropped, so
// memory stays bounded however long the app runs.
func TestPruneBoundsMemory(t *testing.T) {
	now := time.Now()
	a := New(Config{TokenTTL: time.Minute, RefreshTTL: time.Hour, Now: func() time.Time { return now }})
	u := a.byID[1]
	for range 50 {
		sid, _ := a.newSession(u, now)
		_, err := a.issueAccess(u, sid, now)
		require.NoError(t, err)
	}
	a.mu.Lock()
	assert.Len(t, a.refresh, 50)
	assert.Len(t, a.access, 50)
	assert.Len(t, a.sessions, 50)
	a.mu.Unlock()

	now = now.Add(time.Hour + time.Minute)
	sid, _ := a.newSession(u, now)
	_, err := a.issueAccess(u, sid, now)
	require.NoError(t, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	assert.Len(t, a.refresh, 1)
	assert.Len(t, a.access, 1)
	assert.Len(t, a.sessions, 1)
}
