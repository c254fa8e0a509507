package filter

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// TestPublishAfterConcurrentFetch: a sync on demand (a worker without the
// lease) and the lease's long-poll fetch from the same state; their pages
// lead to states of the same version with different cursors, and the one
// on demand is published. The lease's next page applies to its own state,
// not to the published one: published as a delta it broke the chain the
// other workers follow, and they enforced nothing new until the next whole
// publication (the e2e flake at load: "published 8/18, mine 7/18" and a
// revocation not enforced on worker 0 within 15 s).
func TestPublishAfterConcurrentFetch(t *testing.T) {
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption())
	defer reset()
	defer func() {
		if t.Failed() {
			t.Logf("logs: %v %v", host.GetErrorLogs(), host.GetWarnLogs())
		}
	}()
	now := time.Now()
	const epoch = "e1"
	page := func(t *testing.T, cursor int64, reset bool, seqs ...int64) []byte {
		t.Helper()
		p := protocol.SyncPage{Epoch: epoch, Cursor: cursor, Reset: reset, Now: now.Unix()}
		for _, s := range seqs {
			p.Changes = append(p.Changes, protocol.Change{Seq: s, Op: protocol.OpRevoke, Key: fmt.Sprintf("fp:%d", s),
				Exp: now.Add(time.Hour).Unix(), Reason: "logout"})
			p.Cursor = s
		}
		b, err := protocol.AppendBinaryPage(nil, &p)
		require.NoError(t, err)
		return b
	}
	// Envoy copies shared data in and out; the emulator hands out the
	// value it keeps, and a state's table is a view of its memory (the
	// publisher's; an adopter's is the value read): keep what was
	// published and store it again before every read.
	var published []byte
	detach := func(t *testing.T) {
		t.Helper()
		table, _, err := proxywasm.GetSharedData(keyTable)
		require.NoError(t, err)
		published = bytes.Clone(table)
	}
	restore := func(t *testing.T) {
		t.Helper()
		require.NoError(t, putShared(keyTable, bytes.Clone(published)))
	}
	p := &pluginContext{metrics: defineMetrics()}
	worker := func() *syncer { return &syncer{plugin: p, state: revocation.New()} }
	// apply is what done does with a page: apply it, publish the result.
	apply := func(t *testing.T, s *syncer, body []byte) {
		t.Helper()
		before, base := s.state.Version(), s.state.Cursor()
		applied, err := s.state.ApplyPage(body, now)
		require.NoError(t, err)
		require.NotEqual(t, before, s.state.Version())
		s.publish(body, before, base, applied)
		detach(t)
	}
	adopt := func(t *testing.T, ss ...*syncer) {
		for _, s := range ss {
			restore(t)
			s.adopt()
		}
	}
	lease, onDemand, other := worker(), worker(), worker()
	apply(t, lease, page(t, 0, true, 1, 2)) // a snapshot, published whole
	apply(t, lease, page(t, 2, false, 3))   // a delta
	adopt(t, onDemand, other)
	require.Equal(t, int64(3), other.state.Cursor())

	// Both fetch from cursor 3; the one on demand sees a change more.
	apply(t, lease, page(t, 3, false, 4))
	apply(t, onDemand, page(t, 3, false, 4, 5))
	adopt(t, other)
	require.Equal(t, int64(5), other.state.Cursor(), "the newer cursor is published")
	// The lease's next pages apply to its own state (cursor 4).
	apply(t, lease, page(t, 4, false, 5))
	apply(t, lease, page(t, 5, false, 6))
	adopt(t, other, onDemand)
	for _, s := range []*syncer{other, onDemand} {
		_, ok := s.state.Revoked("fp:6", now.Unix())
		require.True(t, ok, "a revocation the lease published is not enforced by the other workers (state %d/%d, lease %d/%d)",
			s.state.Version(), s.state.Cursor(), lease.state.Version(), lease.state.Cursor())
	}
}
