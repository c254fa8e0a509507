package filter

// Natively tested pieces that the native build does not call: the Wasm
// build's header-map view (host_wasip1.go) and HTTP context reuse (its
// delete hook).

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/internal/resettest"
	"github.com/meshsession/meshsession/plugin/core/decide"
)

// collect reads raw through a headerPairs.
func collect(raw []byte) [][2]string {
	var h headerPairs
	h.view(raw)
	return readPairs(&h)
}

// readPairs is every pair h yields.
func readPairs(h *headerPairs) [][2]string {
	var out [][2]string
	for {
		k, v, ok := h.next()
		if !ok {
			return out
		}
		out = append(out, [2]string{k, v})
	}
}

func TestViewPairs(t *testing.T) {
	pairs := [][2]string{{":method", "GET"}, {":path", "/api/x"}, {"authorization", "Bearer t"}, {"x-empty", ""}, {"", "v"}}
	whole := host.EncodePairs(pairs)
	tests := []struct {
		name string
		raw  []byte
		want [][2]string
	}{
		{"whole map", whole, pairs},
		{"empty map", host.EncodePairs(nil), nil},
		{"nil", nil, nil},
		{"short count", []byte{1, 0}, nil},
		{"count larger than the sizes", binary.LittleEndian.AppendUint32(nil, 1000), nil},
		{"truncated data: the pairs before the fault", whole[:len(whole)-3], pairs[:len(pairs)-1]},
		{"size past the end", func() []byte {
			b := append([]byte(nil), whole...)
			binary.LittleEndian.PutUint32(b[4+8:], 1<<31) // the second key's size
			return b
		}(), pairs[:1]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, collect(tc.raw))
		})
	}
}

// FuzzViewPairs: any bytes from the host iterate without a panic, yield
// strings inside the buffer, and a well-formed map reads back whole.
func FuzzViewPairs(f *testing.F) {
	f.Add(host.EncodePairs([][2]string{{":path", "/"}, {"cookie", "a=b"}}))
	f.Add([]byte{2, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		total := 0
		for _, p := range collect(raw) {
			total += len(p[0]) + len(p[1])
		}
		require.LessOrEqual(t, total, len(raw))
		if len(raw) >= 4 && len(raw) < 1<<12 {
			// Re-encode what was read from a well-formed prefix: it reads back.
			got := collect(raw)
			assert.Equal(t, got, collect(host.EncodePairs(got)))
		}
	})
}

func TestReleasedContextsAreReused(t *testing.T) {
	p := &pluginContext{}
	h := p.NewHttpContext(1).(*httpContext)
	h.status, h.requestBody = 500, []byte("x")
	h.released()
	require.Len(t, p.freeHTTP, 1)
	again := p.NewHttpContext(2).(*httpContext)
	assert.Same(t, h, again, "a released context serves the next stream")
	assert.Equal(t, uint32(2), again.contextID)
	assert.Same(t, p, again.plugin)
	assert.Zero(t, again.status, "nothing of the previous stream is left")
	assert.Nil(t, again.requestBody)
	assert.Empty(t, p.freeHTTP)

	again.route = decide.RouteLogin // (or refresh, logout): a callout may still hold it
	again.released()
	assert.Empty(t, p.freeHTTP, "contexts of the auth routes are left to the GC")

	for i := 0; i < maxFreeHTTP+10; i++ {
		(&httpContext{plugin: p}).released()
	}
	assert.Len(t, p.freeHTTP, maxFreeHTTP, "the free list is bounded")
}

func TestResetEmptiesEveryFieldButThePlugin(t *testing.T) {
	h := &httpContext{}
	resettest.Check(t, h, h.reset, "plugin")
}

// TestViewPairsOnly: an iterator given name lengths yields only the pairs
// whose names have them, in order, from the serialisation and from decoded
// pairs alike; lengths of 63 and more share one bit.
func TestViewPairsOnly(t *testing.T) {
	long := strings.Repeat("x", 70)
	pairs := [][2]string{{":method", "GET"}, {":authority", "app"}, {":path", "/a"}, {"user-agent", "ua"},
		{"Authorization", "Bearer t"}, {"x-request-id", "1"}, {"cookie", "c=1"}, {long, "v"}, {strings.Repeat("y", 64), "w"}}
	only := lensOf(":path", "authorization", "cookie", long, "")
	want := [][2]string{{":path", "/a"}, {"Authorization", "Bearer t"}, {"cookie", "c=1"}, {long, "v"}, {strings.Repeat("y", 64), "w"}}
	raw := headerPairs{only: only}
	raw.view(host.EncodePairs(pairs))
	assert.Equal(t, want, readPairs(&raw))
	list := headerPairs{only: only}
	list.list(pairs)
	assert.Equal(t, want, readPairs(&list))
	all := headerPairs{}
	all.view(host.EncodePairs(pairs))
	assert.Equal(t, pairs, readPairs(&all), "no lengths: every pair")
	assert.True(t, lensOf().has(4) && !only.has(4) && only.has(6) && only.has(200))
}

func TestSameHeaderName(t *testing.T) {
	for _, tc := range []struct {
		got, name string
		want      bool
	}{
		{"authorization", "authorization", true},
		{"Authorization", "authorization", true},
		{"AUTHORIZATION", "authorization", true},
		{"authorizatiom", "authorization", false},
		{"@uthorization", "authorization", false},
		{"cookie", "cookie", true},
		{"Cookie", "cookie", true},
		{"accept", "cookie", false},
		{"cookies", "cookie", false},
		{"X-Session-ID", "x-session-id", true},
		{"x-request-id", "x-session-id", false},
		{"", "", true},
		{"", "cookie", false},
	} {
		assert.Equal(t, tc.want, sameHeaderName(tc.got, tc.name), "%q vs %q", tc.got, tc.name)
	}
}
