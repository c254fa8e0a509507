package throttle_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/throttle"
	"github.com/meshsession/meshsession/plugin/protocol"
)

func TestMark(t *testing.T) {
	var buf [throttle.MarkLen]byte
	b := throttle.EncodeMark(&buf, 1_800_000_000_123)
	assert.Len(t, b, 8)
	ms, ok, err := throttle.DecodeMark(b)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.EqualValues(t, 1_800_000_000_123, ms)

	_, ok, err = throttle.DecodeMark(nil)
	require.NoError(t, err)
	assert.False(t, ok, "absent or blanked")
	_, _, err = throttle.DecodeMark([]byte{1, 2, 3})
	assert.ErrorIs(t, err, throttle.ErrBadMark)

	assert.Equal(t, "ms:seen:sid:abc", throttle.MarkKey("sid:abc"))
	assert.Equal(t, "ms:seen:fp:x", string(throttle.AppendMarkKey(nil, "fp:x")))
}

func TestDue(t *testing.T) {
	iv := 30 * time.Second
	now := int64(1_000_000_000)
	tests := []struct {
		last int64
		due  bool
	}{
		{0, true},
		{now, false},
		{now - 29_999, false},
		{now - 30_000, true},
		{now + 5_000, false}, // slightly ahead (another worker's clock)
		{now + 30_001, true}, // far in the future: broken mark
		{-5, true},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.due, throttle.Due(tc.last, now, iv), "last=%d", tc.last)
	}
}

func TestBatch(t *testing.T) {
	b := throttle.NewBatch(2)
	assert.Nil(t, b.Flush())
	assert.True(t, b.Add(protocol.Activity{Key: "sid:b", User: "u", At: 10, IP: "1.2.3.4"}))
	assert.True(t, b.Add(protocol.Activity{Key: "sid:a", At: 5}))
	assert.True(t, b.Add(protocol.Activity{Key: "sid:b", At: 20}), "coalesced into the existing entry")
	assert.True(t, b.Add(protocol.Activity{Key: "sid:b", At: 15, IP: "9.9.9.9"}), "older mark ignored")
	assert.False(t, b.Add(protocol.Activity{Key: "sid:c", At: 1}), "full")
	assert.Equal(t, 2, b.Len())

	body := b.Flush()
	var got []protocol.Activity
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, []protocol.Activity{
		{Key: "sid:a", At: 5},
		{Key: "sid:b", User: "u", At: 20, IP: "1.2.3.4"},
	}, got)
	assert.Equal(t, `[{"key":"sid:a","at":5},{"key":"sid:b","user":"u","at":20,"ip":"1.2.3.4"}]`, string(body))
	assert.Equal(t, 0, b.Len())
	assert.Nil(t, b.Flush())

	// odd strings are escaped
	b.Add(protocol.Activity{Key: "sid:\"x\"\n", User: "ü", At: 1})
	require.NoError(t, json.Unmarshal(b.Flush(), &got))
	assert.Equal(t, "sid:\"x\"\n", got[0].Key)
	assert.Equal(t, "ü", got[0].User)

	assert.Equal(t, throttle.DefaultBatchMax, throttle.NewBatch(0).Max)
}

func TestTracker(t *testing.T) {
	tr := throttle.NewTracker(3)
	assert.True(t, tr.Wrote("a", 1000))
	assert.True(t, tr.Wrote("b", 5000))
	assert.True(t, tr.Wrote("c", 9000))
	assert.False(t, tr.Wrote("d", 9000), "full")
	assert.True(t, tr.Wrote("a", 9500), "known key updates")
	assert.Equal(t, []string{"b"}, tr.Prune(10_000, 4*time.Second))
	assert.Equal(t, 2, tr.Len())
	assert.Equal(t, []string{"a", "c"}, tr.Prune(100_000, time.Second))
	assert.Equal(t, 0, tr.Len())
}

// The protocol a worker follows with shared data, simulated with a CAS map:
// only one of several workers reports a session per interval.
func TestThrottleAcrossWorkers(t *testing.T) {
	type slot struct {
		val []byte
		cas uint32
	}
	shared := map[string]slot{}
	var casCounter uint32
	set := func(k string, v []byte, cas uint32) bool {
		cur, ok := shared[k]
		if ok && cas != 0 && cur.cas != cas {
			return false
		}
		casCounter++
		shared[k] = slot{append([]byte{}, v...), casCounter}
		return true
	}
	reports := 0
	workerSeen := func(sessionKey string, nowMs int64) {
		k := throttle.MarkKey(sessionKey)
		cur := shared[k]
		last, _, err := throttle.DecodeMark(cur.val)
		require.NoError(t, err)
		if !throttle.Due(last, nowMs, 30*time.Second) {
			return
		}
		var buf [8]byte
		if set(k, throttle.EncodeMark(&buf, nowMs), cur.cas) {
			reports++
		}
	}
	for ms := int64(1); ms <= 90_000; ms += 100 {
		for w := 0; w < 4; w++ {
			workerSeen("sid:s", 1_000_000+ms)
		}
	}
	assert.Equal(t, 3, reports, "one report per 30 s over 90 s")
}

func BenchmarkFlush1000(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		bt := throttle.NewBatch(1000)
		for i := 0; i < 1000; i++ {
			bt.Add(protocol.Activity{Key: fmt.Sprintf("sid:%d", i), User: "u", At: int64(i), IP: "10.0.0.1"})
		}
		_ = bt.Flush()
	}
}
