package throttle_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/throttle"
	"github.com/meshsession/meshsession/plugin/protocol"
)

func TestBatchCarriesDiscoveryFields(t *testing.T) {
	b := throttle.NewBatch(4)
	first := protocol.Activity{Key: "sid:s", User: "u", At: 10, IP: "1.2.3.4",
		Keys: []string{"sid:s", "fp:\"q\""}, UserAgent: "Mozilla/5.0 \"x\"", Exp: 1700000000}
	require.True(t, b.Add(first))
	require.True(t, b.Add(protocol.Activity{Key: "sid:s", At: 20}), "a later mark without them keeps them")
	var got []protocol.Activity
	require.NoError(t, json.Unmarshal(b.Flush(), &got))
	want := first
	want.At = 20
	assert.Equal(t, []protocol.Activity{want}, got)
}
