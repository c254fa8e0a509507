package host_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
)

// Envoy's stream semantics for paused headers, continue_stream and local
// replies (proxy-wasm-cpp-host src/context.cc, Envoy
// source/extensions/common/wasm/context.cc and
// source/common/http/filter_manager.cc), driven by testdata/guest.

func respPhase(t *testing.T, h *host.Host, cmd string) *host.Stream {
	t.Helper()
	s, res := command(t, h, 0, cmd)
	require.Equal(t, host.ActionContinue, res.Action)
	t.Cleanup(func() { _ = s.Finish() })
	return s
}

func okHeaders() [][2]string {
	return [][2]string{{":status", "200"}, {"content-type", "application/json"}}
}

// gatedUpstream is a callout cluster that answers "ok" only once resume
// is called (at the latest when the test ends), so that a body sent while
// the callout is in flight is held, whatever the scheduling. resume lets it
// answer and returns what Wait then delivers.
func gatedUpstream(t *testing.T) (url string, resume func(*host.Stream) host.Event) {
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(up.Close)
	t.Cleanup(release) // before up.Close: its handlers must return
	return up.URL, func(s *host.Stream) host.Event {
		release()
		ev, err := s.Wait(waitCtx(t))
		require.NoError(t, err)
		return ev
	}
}

// held asserts that a body callback was held by the host (not delivered).
func held(t *testing.T) func(host.Result, error) {
	return func(res host.Result, err error) {
		t.Helper()
		require.NoError(t, err)
		require.True(t, res.Held)
	}
}

func TestPausedResponseHeadersStopTheBodyByDefault(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s := respPhase(t, h, "resp-hold")
	res, err := s.ResponseHeaders(okHeaders(), false)
	require.NoError(t, err)
	assert.Equal(t, host.ActionPause, res.Action)
	res, err = s.ResponseBody([]byte(`{"jwt":"x"}`), true)
	require.NoError(t, err)
	assert.True(t, res.Held, "StopAllIterationAndWatermark: the body is held by the host")
	assert.Empty(t, sharedValue(h, fmt.Sprintf("rbody:%d", s.ID())), "no body callback reaches the filter")
	assert.False(t, s.ResponseHeadersSent())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Wait(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a filter waiting for the body hangs the stream")
}

func TestAllowOnHeadersStopIterationDeliversTheBody(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true, AllowOnHeadersStopIteration: true})
	s := respPhase(t, h, "resp-hold")
	res, err := s.ResponseHeaders(okHeaders(), false)
	require.NoError(t, err)
	assert.Equal(t, host.ActionPause, res.Action)
	for i, chunk := range []string{`{"jwt"`, `:"x"`, `}`} {
		res, err = s.ResponseBody([]byte(chunk), i == 2)
		require.NoError(t, err)
		assert.False(t, res.Held)
	}
	assert.Equal(t, host.ActionContinue, res.Action)
	assert.Equal(t, `{"jwt":"x"}`, string(s.ResponseBodyBytes()), "paused body chunks are buffered")
	assert.Equal(t, "6/0/0;10/0/0;11/1/0;", sharedValue(h, fmt.Sprintf("rbody:%d", s.ID())))
	assert.True(t, s.ResponseHeadersSent())
}

func TestResumeDeliversTheHeldBody(t *testing.T) {
	up, resume := gatedUpstream(t)
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true,
		Clusters: map[string]host.Cluster{"up": {URL: up}}})
	s := respPhase(t, h, "resp-callout:up:/")
	res, err := s.ResponseHeaders(okHeaders(), false)
	require.NoError(t, err)
	require.Equal(t, host.ActionPause, res.Action)
	held(t)(s.ResponseBody([]byte("part1-"), false))
	held(t)(s.ResponseBody([]byte("part2"), true))
	assert.Equal(t, host.Event{Kind: host.EventContinue, Stream: host.StreamResponse}, resume(s))
	// One callback with the whole held body; the request maps were dropped
	// by proxy_continue_stream (status 2, BadArgument).
	assert.Equal(t, "11/1/2;", sharedValue(h, fmt.Sprintf("rbody:%d", s.ID())))
	assert.Equal(t, "part1-part2", string(s.ResponseBodyBytes()))
	assert.True(t, s.ResponseHeadersSent())
}

func TestContinueDuringOwnCallbackResumes(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s := respPhase(t, h, "resp-continue-self")
	res, err := s.ResponseHeaders(okHeaders(), false)
	require.NoError(t, err)
	assert.Equal(t, host.ActionContinue, res.Action, "Envoy runs continueEncoding after the call returns")
	res, err = s.ResponseBody([]byte("x"), true)
	require.NoError(t, err)
	assert.False(t, res.Held)
}

func TestLocalReplyAfterResponseHeadersResets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cmd       string
		allow     bool
		wantReset bool
	}{
		{"default host, headers continued", "resp-deny", false, true},
		{"opt-in, headers continued", "resp-deny", true, true},
		{"opt-in, headers held: a clean local reply", "resp-deny:hold", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true, AllowOnHeadersStopIteration: tc.allow})
			s := respPhase(t, h, tc.cmd)
			_, err := s.ResponseHeaders(okHeaders(), false)
			require.NoError(t, err)
			res, err := s.ResponseBody([]byte(`{"jwt":`), false)
			require.NoError(t, err)
			assert.Equal(t, host.ActionPause, res.Action)
			res, err = s.ResponseBody([]byte(`"secret"}`), true)
			require.NoError(t, err)
			require.NotNil(t, res.LocalResponse)
			assert.Equal(t, tc.wantReset, res.Reset)
			assert.Equal(t, tc.wantReset, s.ResponseHeadersSent())
			assert.Equal(t, uint32(403), res.LocalResponse.Status)
		})
	}
	t.Run("default host, headers held: hangs", func(t *testing.T) {
		h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
		s := respPhase(t, h, "resp-deny:hold")
		_, err := s.ResponseHeaders(okHeaders(), false)
		require.NoError(t, err)
		res, err := s.ResponseBody([]byte(`{}`), true)
		require.NoError(t, err)
		assert.True(t, res.Held)
		assert.Nil(t, res.LocalResponse)
	})
}

func TestContinueOfAStreamNotStoppedIsCounted(t *testing.T) {
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true})
	s, res := command(t, h, 0, "continue-now")
	assert.Equal(t, host.ActionContinue, res.Action)
	assert.Equal(t, int64(1), h.ContinueMisuses())
	require.NoError(t, s.Finish())

	s = respPhase(t, h, "resp-continue-self") // continues and pauses: fine
	_, err := s.ResponseHeaders(okHeaders(), false)
	require.NoError(t, err)
	assert.Equal(t, int64(1), h.ContinueMisuses())
}

// TestHeldRequestBodyIsReadableAfterResume: the held request body reaches
// the filter after it resumed, readable and writable there, although the
// request headers are gone (Context::continueStream).
func TestHeldRequestBodyIsReadableAfterResume(t *testing.T) {
	up, resume := gatedUpstream(t)
	h := newHost(t, host.Config{Module: guestWasm(t), Workers: 1, DisableTicks: true,
		Clusters: map[string]host.Cluster{"up": {URL: up}}})
	s, err := h.NewStream(0)
	require.NoError(t, err)
	defer func() { _ = s.Finish() }()
	res, err := s.RequestHeaders(reqHeaders([2]string{"x-cmd", "callout:up:/"}), false)
	require.NoError(t, err)
	require.Equal(t, host.ActionPause, res.Action)
	held(t)(s.RequestBody([]byte("replace me"), true))
	assert.Equal(t, host.Event{Kind: host.EventContinue, Stream: host.StreamRequest}, resume(s))
	assert.Equal(t, "new", string(s.RequestBodyBytes()), "the filter read and replaced the held body")
	_, ok := s.RequestHeader("x-body-status")
	assert.False(t, ok, "the request headers were gone: the guest's write failed")
}
