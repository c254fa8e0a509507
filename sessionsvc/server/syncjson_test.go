package server

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

func TestAppendSyncPageMatchesEncodingJSON(t *testing.T) {
	pages := []protocol.SyncPage{
		{Epoch: "e", Changes: []protocol.Change{}},
		{Epoch: "abc", Cursor: 42, More: true, Reset: true, Now: 1700000000, Changes: []protocol.Change{
			{Seq: 1, Op: protocol.OpRevoke, Key: "fp:abc-_", Exp: 99, Reason: "logout"},
			{Seq: 2, Op: protocol.OpBlock, User: "ünïcode \"quoted\" <tag> \\ \n"},
			{Seq: 3, Op: protocol.OpNotBefore, User: "7", At: 5, Exp: 6, Reason: "not_before"},
		}},
	}
	for _, p := range pages {
		want, err := json.Marshal(p)
		require.NoError(t, err)
		got := appendSyncPage(nil, &p)
		assert.Equal(t, string(want)+"\n", string(got))
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("ü\"\\\x00<")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}
