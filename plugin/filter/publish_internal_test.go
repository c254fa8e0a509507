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
		return revokingPage(t, epoch, now, cursor, reset, seqs...)
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

// TestOnDemandSyncPastTheLeasesVersions: a worker adopts the published
// state and syncs on demand for a logout; meanwhile the lease publishes two
// versions for other changes. The page on demand (one page: one version
// more than its base, two fewer than the lease's) reaches past the
// logout's revocation; the lease's last state does not. The logout's
// answer goes once that page is published: it must be, and no worker may
// step back to the lease's state (the token passed everywhere until the
// lease published past it).
func TestOnDemandSyncPastTheLeasesVersions(t *testing.T) {
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
		return revokingPage(t, epoch, now, cursor, reset, seqs...)
	}
	// The table published whole, kept apart (see TestPublishAfterConcurrentFetch).
	var published []byte
	p := &pluginContext{metrics: defineMetrics()}
	worker := func() *syncer { return &syncer{plugin: p, state: revocation.New()} }
	apply := func(t *testing.T, s *syncer, body []byte) {
		t.Helper()
		before, base := s.state.Version(), s.state.Cursor()
		applied, err := s.state.ApplyPage(body, now)
		require.NoError(t, err)
		require.NotEqual(t, before, s.state.Version())
		s.publish(body, before, base, applied)
		if full, _ := readInt(keyFull); uint64(full) != s.state.Version() {
			return // not published whole (a delta, or not published): the table kept is still the one published
		}
		table, _, err := proxywasm.GetSharedData(keyTable)
		require.NoError(t, err)
		published = bytes.Clone(table)
	}
	adopt := func(t *testing.T, ss ...*syncer) {
		t.Helper()
		for _, s := range ss {
			require.NoError(t, putShared(keyTable, bytes.Clone(published)))
			s.adopt()
		}
	}
	enforced := func(t *testing.T, key, what string, ss ...*syncer) {
		t.Helper()
		for i, s := range ss {
			_, ok := s.state.Revoked(key, now.Unix())
			require.True(t, ok, "%s: worker %d accepts %s (state %d/%d)", what, i, key, s.state.Version(), s.state.Cursor())
		}
	}
	lease, b, other := worker(), worker(), worker()
	apply(t, lease, page(t, 0, true, 1, 2)) // v1/2, whole
	apply(t, lease, page(t, 2, false, 3))   // v2/3, a delta
	adopt(t, b, other)                      // 1. b adopts v2/3, sends its logout
	apply(t, lease, page(t, 3, false, 4))   // 2. the lease publishes v3/4
	apply(t, lease, page(t, 4, false, 5))   // and v4/5
	// 3. The logout's revocation (seq 7) commits; b's sync on demand, from
	// 2/3 (it has not adopted since), brings it at once: b is at v3/7.
	apply(t, b, page(t, 3, false, 4, 5, 6, 7))
	enforced(t, "fp:7", "the sync on demand applied", b)
	// The lease's long-poll, out from 5 before that, answers now: its
	// state (v5/6) is behind what is published, and is not published.
	apply(t, lease, page(t, 5, false, 6))
	// The logout's answer goes now. 4. Every worker adopts what is
	// published, at once or later, and none steps back.
	adopt(t, b, other, lease)
	enforced(t, "fp:7", "after the answer", b, other, lease)
	// The lease goes on from the state it adopted, and the chain holds.
	apply(t, lease, page(t, 7, false, 8))
	adopt(t, b, other)
	enforced(t, "fp:8", "the lease's next page", b, other)
	enforced(t, "fp:7", "the lease's next page", b, other, lease)
}

// TestConcurrentPublishers: the lease publishes its state (v5/6) while a
// worker's sync on demand publishes a newer one (v3/7, with the logout's
// revocation fp:7), their steps interleaved: the lease read the published
// version (v4/5) and compared, then the other published whole, then the
// lease wrote its older state over it. The worker on demand released its
// logout's answer, and the others adopted a state without fp:7. With the
// publish lock, the one on demand cannot publish while the lease does:
// its answer waits, and goes once its state is published (next tick).
func TestConcurrentPublishers(t *testing.T) {
	_, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption())
	defer reset()
	now := time.Now()
	page := func(t *testing.T, cursor int64, reset bool, seqs ...int64) []byte {
		return revokingPage(t, "e1", now, cursor, reset, seqs...)
	}
	var published []byte // the table published whole, kept apart (see TestPublishAfterConcurrentFetch)
	keep := func(t *testing.T) {
		t.Helper()
		table, _, err := proxywasm.GetSharedData(keyTable)
		require.NoError(t, err)
		published = bytes.Clone(table)
	}
	p := &pluginContext{metrics: defineMetrics()}
	worker := func() *syncer { return &syncer{plugin: p, state: revocation.New()} }
	applyOnly := func(t *testing.T, s *syncer, body []byte) (uint64, int64, revocation.Applied) {
		t.Helper()
		before, base := s.state.Version(), s.state.Cursor()
		applied, err := s.state.ApplyPage(body, now)
		require.NoError(t, err)
		return before, base, applied
	}
	apply := func(t *testing.T, s *syncer, body []byte) {
		t.Helper()
		before, base, applied := applyOnly(t, s, body)
		require.True(t, s.publish(body, before, base, applied))
		keep(t)
	}
	adopt := func(t *testing.T, s *syncer) {
		t.Helper()
		require.NoError(t, putShared(keyTable, bytes.Clone(published)))
		s.adopt()
	}
	lease, b, other := worker(), worker(), worker()
	apply(t, lease, page(t, 0, true, 1, 2)) // v1/2, whole
	apply(t, lease, page(t, 2, false, 3))   // v2/3 (a delta: whole below)
	apply(t, lease, page(t, 3, false, 4))
	apply(t, lease, page(t, 4, false, 5)) // v4/5
	b.state = revocation.New()
	applyOnly(t, b, page(t, 0, true, 1, 2, 3, 4, 5, 6, 7)) // b's sync on demand: v1/7, with fp:7

	released := false
	// The lease's page (v5/6) is published; between its comparison and
	// its writes, b publishes (its answer waits on it).
	lb, lbase, lapplied := applyOnly(t, lease, page(t, 5, false, 6))
	lease.beforeWrite = func() {
		lease.beforeWrite = nil
		if b.publish(nil, 0, 0, revocation.Applied{}) {
			keep(t)
		}
		b.waiters = append(b.waiters, func() { released = true })
		b.wake(now) // if the answer goes now, every worker must enforce fp:7 from now on
	}
	lease.publish(nil, lb, lbase, lapplied) // whole (as a page too big for a delta)
	keep(t)
	if !released {
		// Not published yet: b's next tick publishes, then answers.
		b.retryPublish()
		keep(t)
	}
	require.True(t, released, "the logout's answer is never released")
	adopt(t, other)
	_, ok := other.state.Revoked("fp:7", now.Unix())
	require.True(t, ok, "the answer went, and another worker accepts fp:7 (state %d/%d, b %d/%d)",
		other.state.Version(), other.state.Cursor(), b.state.Version(), b.state.Cursor())
}

// revokingPage is a binary sync page of epoch from cursor revoking
// "fp:<seq>" for each of seqs (its cursor: the last seq).
func revokingPage(t *testing.T, epoch string, now time.Time, cursor int64, reset bool, seqs ...int64) []byte {
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
