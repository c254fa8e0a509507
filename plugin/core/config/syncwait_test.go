package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSyncWait(t *testing.T) {
	for _, tc := range []struct {
		json string
		want time.Duration
		err  bool
	}{
		{`{"cluster":"s"}`, DefaultSyncWait, false},
		{`{"cluster":"s","sync_wait":"0s"}`, 0, false},
		{`{"cluster":"s","sync_wait":"20s","max_staleness":"90s"}`, 20 * time.Second, false},
		{`{"cluster":"s","sync_wait":"20s"}`, 10 * time.Second, false}, // a third of the default max_staleness
		{`{"cluster":"s","max_staleness":"300ms"}`, 100 * time.Millisecond, false},
		{`{"cluster":"s","sync_wait":"26s","max_staleness":"5m"}`, 0, true},
		{`{"cluster":"s","sync_wait":"-1s"}`, 0, true},
		{`{"cluster":"s","sync_wait":"soon"}`, 0, true},
	} {
		c, err := Parse([]byte(tc.json))
		if tc.err {
			assert.Error(t, err, tc.json)
			continue
		}
		require.NoError(t, err, tc.json)
		assert.Equal(t, tc.want, c.SyncWait, tc.json)
	}
}
