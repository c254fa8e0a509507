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

// publishing is one plugin's workers (syncers) on the host emulator,
// applying and publishing pages of epoch "e1", with the table last
// published whole kept apart. Envoy copies shared data in and out; the
// emulator hands out the value it keeps, and a state's table is a view of
// its memory (the publisher's; an adopter's is the value read): keep what
// was published and store it again before every read.
type publishing struct {
	now       time.Time
	plugin    *pluginContext
	published []byte
}

// newPublishing starts the host emulator for the test (its logs shown
// when the test fails).
func newPublishing(t *testing.T) *publishing {
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs: %v %v", host.GetErrorLogs(), host.GetWarnLogs())
		}
		reset()
	})
	return &publishing{now: time.Now(), plugin: &pluginContext{metrics: defineMetrics()}}
}

// worker is a new worker with an empty state.
func (f *publishing) worker() *syncer { return &syncer{plugin: f.plugin, state: revocation.New()} }

// page is a binary sync page from cursor revoking "fp:<seq>" for each of
// seqs (its cursor: the last seq).
func (f *publishing) page(t *testing.T, cursor int64, reset bool, seqs ...int64) []byte {
	t.Helper()
	p := protocol.SyncPage{Epoch: "e1", Cursor: cursor, Reset: reset, Now: f.now.Unix()}
	for _, s := range seqs {
		p.Changes = append(p.Changes, protocol.Change{Seq: s, Op: protocol.OpRevoke, Key: fmt.Sprintf("fp:%d", s),
			Exp: f.now.Add(time.Hour).Unix(), Reason: "logout"})
		p.Cursor = s
	}
	b, err := protocol.AppendBinaryPage(nil, &p)
	require.NoError(t, err)
	return b
}

// applyPage applies body to s's state (a new version), as done does
// before publishing, and returns what publish takes: the state's version
// and cursor before, and what was applied.
func (f *publishing) applyPage(t *testing.T, s *syncer, body []byte) (uint64, int64, revocation.Applied) {
	t.Helper()
	before, base := s.state.Version(), s.state.Cursor()
	applied, err := s.state.ApplyPage(body, f.now)
	require.NoError(t, err)
	require.NotEqual(t, before, s.state.Version())
	return before, base, applied
}

// publish is what done does with a page: apply it to s's state, publish
// the result. It reports whether the state was published.
func (f *publishing) publish(t *testing.T, s *syncer, body []byte) bool {
	t.Helper()
	before, base, applied := f.applyPage(t, s, body)
	return s.publish(body, before, base, applied)
}

// keep keeps the table now published.
func (f *publishing) keep(t *testing.T) {
	t.Helper()
	table, _, err := proxywasm.GetSharedData(keyTable)
	require.NoError(t, err)
	f.published = bytes.Clone(table)
}

// adopt has each of ss adopt the table kept.
func (f *publishing) adopt(t *testing.T, ss ...*syncer) {
	t.Helper()
	for _, s := range ss {
		require.NoError(t, putShared(keyTable, bytes.Clone(f.published)))
		s.adopt()
	}
}

// revoked reports whether s's state refuses key now.
func (f *publishing) revoked(s *syncer, key string) bool {
	_, ok := s.state.Revoked(key, f.now.Unix())
	return ok
}

// TestPublishAfterConcurrentFetch: a sync on demand (a worker without the
// lease) and the lease's long-poll fetch from the same state; their pages
// lead to states of the same version with different cursors, and the one
// on demand is published. The lease's next page applies to its own state,
// not to the published one: published as a delta it broke the chain the
// other workers follow, and they enforced nothing new until the next whole
// publication (the e2e flake at load: "published 8/18, mine 7/18" and a
// revocation not enforced on worker 0 within 15 s).
func TestPublishAfterConcurrentFetch(t *testing.T) {
	f := newPublishing(t)
	apply := func(t *testing.T, s *syncer, body []byte) {
		t.Helper()
		f.publish(t, s, body)
		f.keep(t)
	}
	lease, onDemand, other := f.worker(), f.worker(), f.worker()
	apply(t, lease, f.page(t, 0, true, 1, 2)) // a snapshot, published whole
	apply(t, lease, f.page(t, 2, false, 3))   // a delta
	f.adopt(t, onDemand, other)
	require.Equal(t, int64(3), other.state.Cursor())

	// Both fetch from cursor 3; the one on demand sees a change more.
	apply(t, lease, f.page(t, 3, false, 4))
	apply(t, onDemand, f.page(t, 3, false, 4, 5))
	f.adopt(t, other)
	require.Equal(t, int64(5), other.state.Cursor(), "the newer cursor is published")
	// The lease's next pages apply to its own state (cursor 4).
	apply(t, lease, f.page(t, 4, false, 5))
	apply(t, lease, f.page(t, 5, false, 6))
	f.adopt(t, other, onDemand)
	for _, s := range []*syncer{other, onDemand} {
		require.True(t, f.revoked(s, "fp:6"), "a revocation the lease published is not enforced by the other workers (state %d/%d, lease %d/%d)",
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
	f := newPublishing(t)
	apply := func(t *testing.T, s *syncer, body []byte) {
		t.Helper()
		f.publish(t, s, body)
		if full, _ := readInt(keyFull); uint64(full) == s.state.Version() {
			f.keep(t) // published whole (not a delta, and published)
		}
	}
	enforced := func(t *testing.T, key, what string, ss ...*syncer) {
		t.Helper()
		for i, s := range ss {
			require.True(t, f.revoked(s, key), "%s: worker %d accepts %s (state %d/%d)", what, i, key, s.state.Version(), s.state.Cursor())
		}
	}
	lease, b, other := f.worker(), f.worker(), f.worker()
	apply(t, lease, f.page(t, 0, true, 1, 2)) // v1/2, whole
	apply(t, lease, f.page(t, 2, false, 3))   // v2/3, a delta
	f.adopt(t, b, other)                      // 1. b adopts v2/3, sends its logout
	apply(t, lease, f.page(t, 3, false, 4))   // 2. the lease publishes v3/4
	apply(t, lease, f.page(t, 4, false, 5))   // and v4/5
	// 3. The logout's revocation (seq 7) commits; b's sync on demand, from
	// 2/3 (it has not adopted since), brings it at once: b is at v3/7.
	apply(t, b, f.page(t, 3, false, 4, 5, 6, 7))
	enforced(t, "fp:7", "the sync on demand applied", b)
	// The lease's long-poll, out from 5 before that, answers now: its
	// state (v5/6) is behind what is published, and is not published.
	apply(t, lease, f.page(t, 5, false, 6))
	// The logout's answer goes now. 4. Every worker adopts what is
	// published, at once or later, and none steps back.
	f.adopt(t, b, other, lease)
	enforced(t, "fp:7", "after the answer", b, other, lease)
	// The lease goes on from the state it adopted, and the chain holds.
	apply(t, lease, f.page(t, 7, false, 8))
	f.adopt(t, b, other)
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
	f := newPublishing(t)
	apply := func(t *testing.T, s *syncer, body []byte) {
		t.Helper()
		require.True(t, f.publish(t, s, body))
		f.keep(t)
	}
	lease, b, other := f.worker(), f.worker(), f.worker()
	apply(t, lease, f.page(t, 0, true, 1, 2)) // v1/2, whole
	apply(t, lease, f.page(t, 2, false, 3))   // v2/3 (a delta: whole below)
	apply(t, lease, f.page(t, 3, false, 4))
	apply(t, lease, f.page(t, 4, false, 5)) // v4/5
	b.state = revocation.New()
	f.applyPage(t, b, f.page(t, 0, true, 1, 2, 3, 4, 5, 6, 7)) // b's sync on demand: v1/7, with fp:7

	released := false
	// The lease's page (v5/6) is published; between its comparison and
	// its writes, b publishes (its answer waits on it).
	lb, lbase, lapplied := f.applyPage(t, lease, f.page(t, 5, false, 6))
	lease.beforeWrite = func() {
		lease.beforeWrite = nil
		if b.publish(nil, 0, 0, revocation.Applied{}) {
			f.keep(t)
		}
		b.waiters = append(b.waiters, func() { released = true })
		b.wake(f.now) // if the answer goes now, every worker must enforce fp:7 from now on
	}
	lease.publish(nil, lb, lbase, lapplied) // whole (as a page too big for a delta)
	f.keep(t)
	if !released {
		// Not published yet: b's next tick publishes, then answers.
		b.retryPublish()
		f.keep(t)
	}
	require.True(t, released, "the logout's answer is never released")
	f.adopt(t, other)
	require.True(t, f.revoked(other, "fp:7"), "the answer went, and another worker accepts fp:7 (state %d/%d, b %d/%d)",
		other.state.Version(), other.state.Cursor(), b.state.Version(), b.state.Cursor())
}
