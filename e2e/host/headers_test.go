package host_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
)

func TestEncodePairsFormat(t *testing.T) {
	got := host.EncodePairs([][2]string{{"ab", "c"}, {"", "xyz"}})
	want := []byte{
		2, 0, 0, 0, // count
		2, 0, 0, 0, 1, 0, 0, 0, // "ab" "c"
		0, 0, 0, 0, 3, 0, 0, 0, // "" "xyz"
		'a', 'b', 0, 'c', 0,
		0, 'x', 'y', 'z', 0,
	}
	assert.Equal(t, want, got)
	assert.Equal(t, []byte{0, 0, 0, 0}, host.EncodePairs(nil))
}

func TestDecodePairsRoundTrip(t *testing.T) {
	for _, pairs := range [][][2]string{
		nil,
		{{":path", "/"}},
		{{"a", ""}, {"", ""}, {"k", "v\x00with nul"}},
	} {
		got, err := host.DecodePairs(host.EncodePairs(pairs))
		require.NoError(t, err)
		if len(pairs) == 0 {
			assert.Empty(t, got)
			continue
		}
		assert.Equal(t, pairs, got)
	}
}

func TestDecodePairsMalformed(t *testing.T) {
	huge := binary.LittleEndian.AppendUint32(nil, 1<<30)
	good := host.EncodePairs([][2]string{{"key", "value"}})
	noNUL := append([]byte(nil), good...)
	noNUL[len(noNUL)-1] = 'x'
	for name, in := range map[string][]byte{
		"short":       {1, 0},
		"huge count":  huge,
		"truncated":   good[:len(good)-3],
		"missing NUL": noNUL,
		"size overrun": append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(
			binary.LittleEndian.AppendUint32(nil, 1), 0xffffffff), 0xffffffff), 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := host.DecodePairs(in)
			assert.Error(t, err)
		})
	}
}

func FuzzDecodePairs(f *testing.F) {
	f.Add(host.EncodePairs([][2]string{{"a", "b"}}))
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs, err := host.DecodePairs(b)
		if err != nil {
			return
		}
		again, err := host.DecodePairs(host.EncodePairs(pairs))
		require.NoError(t, err)
		require.Equal(t, len(pairs), len(again))
	})
}
