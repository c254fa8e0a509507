package filter_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// TestManyOpenStreams: more streams open at once than the glue's table of
// HTTP contexts holds (the others live in the SDK's maps), finished out of
// order, with logouts (callouts from an HTTP context) on both kinds, and
// contexts reused afterwards.
func TestManyOpenStreams(t *testing.T) {
	stub := newStub(t)
	hh := startWasmHost(t, 1, testConfig(`"timeout":"30s"`), stub.clusters())
	hh.tickAll(t) // the first sync lands: no start-up hold below
	h := hh.h

	const open = 600
	streams := make([]*host.Stream, open)
	for i := range streams {
		s, err := h.NewStream(0)
		require.NoError(t, err)
		req := [][2]string{{":method", "GET"}, {":path", "/api/articles"}, {":authority", "app"},
			{"authorization", "Bearer " + userToken(i, "s-"+strconv.Itoa(i))}, {"x-user-id", "forged"}}
		r, err := s.RequestHeaders(req, true)
		require.NoError(t, err)
		require.Nil(t, r.LocalResponse)
		uid, _ := s.RequestHeader("x-user-id")
		require.Equal(t, strconv.Itoa(i), uid)
		streams[i] = s
	}
	// Logouts while all of them are open: some contexts land in the table,
	// some in the SDK's maps.
	for i := 0; i < 4; i++ {
		s, err := h.NewStream(0)
		require.NoError(t, err)
		tok := userToken(1000+i, "out-"+strconv.Itoa(i))
		r, err := s.RequestHeaders([][2]string{{":method", "POST"}, {":path", "/api/auth/logout"}, {":authority", "app"},
			{"authorization", "Bearer " + tok}}, true)
		require.NoError(t, err)
		require.Nil(t, r.LocalResponse)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ev, err := s.Wait(ctx)
		cancel()
		require.NoError(t, err)
		assert.Equal(t, host.EventContinue, ev.Kind, "logout %d resumed", i)
		_, err = s.ResponseHeaders([][2]string{{":status", "200"}}, true)
		require.NoError(t, err)
		require.NoError(t, s.Finish())
	}
	for i := open - 1; i >= 0; i -= 2 {
		_, err := streams[i].ResponseHeaders([][2]string{{":status", "200"}}, true)
		require.NoError(t, err)
		require.NoError(t, streams[i].Finish())
	}
	for i := 0; i < open; i += 2 {
		_, err := streams[i].ResponseHeaders([][2]string{{":status", "200"}}, true)
		require.NoError(t, err)
		require.NoError(t, streams[i].Finish())
	}
	assert.Equal(t, 4, stub.count(protocol.PathRevoke))
	// Reused contexts start clean.
	for i := 0; i < 2*open; i++ {
		s, err := h.NewStream(0)
		require.NoError(t, err)
		r, err := s.RequestHeaders([][2]string{{":method", "GET"}, {":path", "/api/articles"}, {":authority", "app"}, {"x-session-id", "forged"}}, true)
		require.NoError(t, err)
		require.Nil(t, r.LocalResponse)
		_, ok := s.RequestHeader("x-session-id")
		require.False(t, ok)
		require.NoError(t, s.Finish())
	}
}
