package storetest

import (
	"testing"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testFailedLogins(t *testing.T, st store.Store) {
	now := t0
	for i := 0; i < 3; i++ {
		n, err := st.RecordFailedLogin(ctx(), "ip:1.2.3.4", now.Add(time.Duration(i)*time.Minute), 10*time.Minute)
		require.NoError(t, err)
		assert.Equal(t, i+1, n)
	}
	n, err := st.RecordFailedLogin(ctx(), "ip:1.2.3.4", now.Add(12*time.Minute), 10*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "failures older than the window do not count")
	n, err = st.CountFailedLogins(ctx(), "ip:1.2.3.4", now)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.NoError(t, st.ClearFailedLogins(ctx(), "ip:1.2.3.4"))
	n, err = st.CountFailedLogins(ctx(), "ip:1.2.3.4", now)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}
