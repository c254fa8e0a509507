package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

func failure(scope string, at time.Time, threshold int) store.LoginFailure {
	return store.LoginFailure{LoginAttempt: attempt(scope, at, threshold), LockFor: 10 * time.Minute}
}

// testLoginCounters: the counter's state machine, one failure at a time.
func testLoginCounters(t *testing.T, st store.Store) {
	now := t0
	var locks []store.LoginCounter
	onLock := func(c store.LoginCounter) ([]store.AuditEvent, []store.Alert) {
		locks = append(locks, c)
		return []store.AuditEvent{{At: c.LockedAt, Event: store.AuditLockoutLocked, SubjectKind: c.Kind, Subject: c.Subject,
				Actor: "system", Detail: json.RawMessage(fmt.Sprintf(`{"failures":%d}`, c.Failures))}},
			[]store.Alert{{Event: "login.locked", Channel: "email", Payload: json.RawMessage(`{}`)}}
	}
	// Four failures: counted, not locked.
	for i := 1; i <= 4; i++ {
		c, err := st.RecordLoginFailure(ctx(), failure("ident:alice", now.Add(time.Duration(i)*time.Second), 5), onLock)
		require.NoError(t, err)
		assert.Equal(t, i, c.Failures)
		assert.False(t, c.JustLocked)
		assert.False(t, c.Locked(now.Add(time.Duration(i)*time.Second)))
		assert.Equal(t, now.Add(time.Second), c.WindowStart, "the window starts at the first failure")
	}
	got, err := st.ActiveLockouts(ctx(), []string{"ident:alice"}, now.Add(5*time.Second))
	require.NoError(t, err)
	assert.Empty(t, got)
	// The fifth locks, once; audit and alert are written with it.
	at5 := now.Add(5 * time.Second)
	c, err := st.RecordLoginFailure(ctx(), failure("ident:alice", at5, 5), onLock)
	require.NoError(t, err)
	assert.Equal(t, 5, c.Failures)
	assert.True(t, c.JustLocked)
	assert.Equal(t, at5.Add(10*time.Minute), c.LockedUntil)
	assert.Equal(t, at5, c.LockedAt)
	require.Len(t, locks, 1)
	// A sixth while locked counts but neither re-locks nor extends.
	c, err = st.RecordLoginFailure(ctx(), failure("ident:alice", now.Add(6*time.Second), 5), onLock)
	require.NoError(t, err)
	assert.Equal(t, 6, c.Failures)
	assert.False(t, c.JustLocked)
	assert.Equal(t, at5.Add(10*time.Minute), c.LockedUntil)
	require.Len(t, locks, 1)

	audit, err := st.ListAudit(ctx(), 0, 10)
	require.NoError(t, err)
	require.Len(t, audit, 1)
	assert.Equal(t, store.AuditLockoutLocked, audit[0].Event)
	assert.Equal(t, "alice", audit[0].Subject)
	assert.JSONEq(t, `{"failures":5}`, string(audit[0].Detail))
	alerts, err := st.ListAlerts(ctx(), false, 10)
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	assert.Equal(t, "login.locked", alerts[0].Event)

	// Active while locked, in the list, gone after the lock ends.
	act, err := st.ActiveLockouts(ctx(), []string{"ident:bob", "ident:alice", "ip:1.2.3.4"}, at5.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, act, 1)
	assert.Equal(t, "ident:alice", act[0].Scope)
	list, err := st.ListLockouts(ctx(), at5.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	act, err = st.ActiveLockouts(ctx(), []string{"ident:alice"}, at5.Add(10*time.Minute))
	require.NoError(t, err)
	assert.Empty(t, act, "the lock ends at LockedUntil")

	// A success while locked does not lift the lock; after it, it resets.
	require.NoError(t, st.ResetLoginFailures(ctx(), "ident:alice", at5.Add(time.Minute)))
	act, err = st.ActiveLockouts(ctx(), []string{"ident:alice"}, at5.Add(time.Minute))
	require.NoError(t, err)
	assert.Len(t, act, 1)
	// After the lock: a failure starts a new window at 1.
	after := at5.Add(11 * time.Minute)
	c, err = st.RecordLoginFailure(ctx(), failure("ident:alice", after, 5), onLock)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Failures)
	assert.False(t, c.Locked(after))
	assert.Equal(t, after, c.WindowStart)
	// A success resets the count.
	require.NoError(t, st.ResetLoginFailures(ctx(), "ident:alice", after))
	c, err = st.RecordLoginFailure(ctx(), failure("ident:alice", after.Add(time.Second), 5), onLock)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Failures)
	// The window ends: failures in a new window start at 1.
	c, err = st.RecordLoginFailure(ctx(), failure("ident:alice", after.Add(16*time.Minute), 5), onLock)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Failures)

	// Threshold 1 locks on the first failure, new row or not.
	c, err = st.RecordLoginFailure(ctx(), failure("ident:one", now, 1), onLock)
	require.NoError(t, err)
	assert.True(t, c.JustLocked)
	assert.Equal(t, 1, c.Failures)

	// Unlock: lifts the lock and writes the audit in the same transaction.
	lifted, err := st.Unlock(ctx(), "ident:one", now.Add(time.Second), []store.AuditEvent{{At: now.Add(time.Second),
		Event: store.AuditLockoutUnlocked, SubjectKind: store.CounterIdentifier, Subject: "one", Actor: "ops"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, lifted.Failures)
	_, err = st.Unlock(ctx(), "ident:one", now.Add(time.Second), nil, nil)
	assert.True(t, errors.Is(err, store.ErrNotFound), "nothing left to unlock: %v", err)
	audit, err = st.ListAudit(ctx(), 0, 10)
	require.NoError(t, err)
	require.Len(t, audit, 3)
	assert.Equal(t, store.AuditLockoutUnlocked, audit[0].Event)
	assert.Equal(t, "ops", audit[0].Actor)
	older, err := st.ListAudit(ctx(), audit[0].ID, 10)
	require.NoError(t, err)
	assert.Len(t, older, 2)
	c, err = st.RecordLoginFailure(ctx(), failure("ident:two", now, 3), onLock)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Failures, "an unlocked scope counts from 1")

	// Prune drops stale unlocked counters only.
	n, err := st.PruneLoginCounters(ctx(), after.Add(time.Hour), after.Add(time.Hour))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 2)

	// Bad arguments are errors, not panics or silent locks.
	_, err = st.RecordLoginFailure(ctx(), store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ident:x"}}, nil)
	assert.Error(t, err)
}

// testLoginCountersProgressive: from the threshold on, each failure locks
// for a doubling delay capped at LockFor; the count survives the short
// locks and restarts with the window; one lock event per window.
func testLoginCountersProgressive(t *testing.T, st store.Store) {
	f := func(at time.Time) store.LoginFailure {
		return store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ip:192.0.2.1", Kind: store.CounterIP, Subject: "192.0.2.1", At: at,
			Threshold: 3, Window: 15 * time.Minute, Progressive: true}, LockFor: 10 * time.Second}
	}
	events := 0
	onLock := func(store.LoginCounter) ([]store.AuditEvent, []store.Alert) { events++; return nil, nil }
	at := t0
	for i := 1; i <= 2; i++ {
		c, err := st.RecordLoginFailure(ctx(), f(at), onLock)
		require.NoError(t, err)
		assert.False(t, c.Locked(at))
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		c, err := st.RecordLoginFailure(ctx(), f(at), onLock)
		require.NoError(t, err)
		assert.Equal(t, at.Add(want), c.LockedUntil, "failure %d", c.Failures)
		at = c.LockedUntil
	}
	assert.Equal(t, 1, events, "one lock event per window")
	// While locked a failure is counted (it raises the next delay) but changes no lock.
	c, err := st.RecordLoginFailure(ctx(), f(at), onLock)
	require.NoError(t, err)
	c2, err := st.RecordLoginFailure(ctx(), f(at.Add(time.Second)), onLock)
	require.NoError(t, err)
	assert.Equal(t, c.LockedUntil, c2.LockedUntil)
	assert.Equal(t, c.Failures+1, c2.Failures)
	// The window ends: the count restarts.
	c, err = st.RecordLoginFailure(ctx(), f(t0.Add(16*time.Minute)), onLock)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Failures)
	assert.False(t, c.Locked(t0.Add(16*time.Minute)))
}

// testLoginCountersConcurrent: N concurrent failures lock after exactly the
// threshold: one failure reports the lock, and the count is N.
func testLoginCountersConcurrent(t *testing.T, st store.Store) {
	ConcurrentFailures(t, []store.Store{st}, 5, 12)
}

// ConcurrentFailures sends n failures for one scope spread over the stores
// (replicas on one database) at once and checks that exactly one locked it,
// that it is the threshold-th, and that all n were counted.
func ConcurrentFailures(t *testing.T, stores []store.Store, threshold, n int) {
	t.Helper()
	scope := fmt.Sprintf("ident:race-%d", time.Now().UnixNano())
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lockers []int
		counts  []int
		start   = make(chan struct{})
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			c, err := stores[i%len(stores)].RecordLoginFailure(ctx(), failure(scope, t0, threshold), nil)
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			counts = append(counts, c.Failures)
			if c.JustLocked {
				lockers = append(lockers, c.Failures)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	require.Len(t, lockers, 1, "exactly one failure locks")
	assert.Equal(t, threshold, lockers[0], "the threshold-th failure locks")
	seen := map[int]bool{}
	for _, c := range counts {
		assert.False(t, seen[c], "count %d returned twice: a lost update", c)
		seen[c] = true
	}
	assert.Len(t, seen, n)
	act, err := stores[0].ActiveLockouts(ctx(), []string{scope}, t0)
	require.NoError(t, err)
	require.Len(t, act, 1)
	assert.Equal(t, n, act[0].Failures)
}

// testLoginFailuresBatch: an address and an identifier counted in one
// transaction, with the dashboard's event; concurrent batches that share
// rows in any order neither deadlock nor lose a count.
func testLoginFailuresBatch(t *testing.T, st store.Store) {
	ip := store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ip:192.0.2.9", Kind: store.CounterIP, Subject: "192.0.2.9", At: t0,
		Threshold: 40, Window: 15 * time.Minute}, LockFor: time.Minute}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			id := failure(fmt.Sprintf("ident:u%d", i%3), t0, 10)
			fs := []store.LoginFailure{ip, id}
			if i%2 == 1 {
				fs = []store.LoginFailure{id, ip}
			}
			cs, err := st.RecordLoginFailures(ctx(), fs, "ip:192.0.2.9", nil)
			if assert.NoError(t, err) {
				assert.Len(t, cs, 2)
				assert.Equal(t, fs[0].Scope, cs[0].Scope, "answers in the order asked")
			}
		})
	}
	wg.Wait()
	c, err := st.RecordLoginFailure(ctx(), ip, nil)
	require.NoError(t, err)
	assert.Equal(t, 31, c.Failures)
	for u := range 3 {
		c, err := st.RecordLoginFailure(ctx(), failure(fmt.Sprintf("ident:u%d", u), t0, 10), nil)
		require.NoError(t, err)
		assert.Equal(t, 11, c.Failures)
		assert.True(t, c.Locked(t0))
	}
	n, err := st.CountFailedLogins(ctx(), "ip:192.0.2.9", t0.Add(-time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 30, n, "one dashboard event per batch")
}

func attempt(scope string, at time.Time, threshold int) store.LoginAttempt {
	return store.LoginAttempt{Scope: scope, Kind: store.CounterIdentifier, Subject: scope[len("ident:"):], At: at,
		Threshold: threshold, Window: 15 * time.Minute}
}

// testLoginAttempts: the check admits at most threshold attempts whose
// outcome is unknown or failed, all scopes or none.
func testLoginAttempts(t *testing.T, st store.Store) {
	begin := func(at time.Time, as ...store.LoginAttempt) bool {
		t.Helper()
		ok, cs, err := st.BeginLoginAttempts(ctx(), as)
		require.NoError(t, err)
		require.Len(t, cs, len(as))
		return ok
	}
	a := attempt("ident:pat", t0, 3)
	for i := range 3 {
		assert.True(t, begin(t0, a), "attempt %d", i)
	}
	assert.False(t, begin(t0, a), "three attempts in flight: the fourth waits")
	// One fails: 1 failure + 2 pending.
	c, err := st.RecordLoginFailure(ctx(), failure("ident:pat", t0, 3), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Failures)
	assert.Equal(t, 2, c.Pending)
	assert.False(t, begin(t0, a))
	// One succeeds elsewhere (released): room for one.
	require.NoError(t, st.ReleaseLoginAttempt(ctx(), "ident:pat", t0))
	assert.True(t, begin(t0, a))
	assert.False(t, begin(t0, a))
	// Unreported attempts expire.
	later := t0.Add(store.PendingTTL + time.Second)
	a.At = later
	assert.True(t, begin(later, a))
	assert.True(t, begin(later, a))
	assert.False(t, begin(later, a), "1 failure + 2 pending")

	// All or none: a refused identifier records nothing for the address.
	ip := store.LoginAttempt{Scope: "ip:192.0.2.44", Kind: store.CounterIP, Subject: "192.0.2.44", At: later, Threshold: 50, Window: time.Hour}
	assert.False(t, begin(later, ip, a))
	ok, cs, err := st.BeginLoginAttempts(ctx(), []store.LoginAttempt{ip})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 1, cs[0].Pending, "the refused attempt took no slot of the address")

	// Locked: refused.
	for range 5 {
		_, err := st.RecordLoginFailure(ctx(), failure("ident:locked", t0, 5), nil)
		require.NoError(t, err)
	}
	assert.False(t, begin(t0.Add(time.Minute), attempt("ident:locked", t0.Add(time.Minute), 5)))
	assert.True(t, begin(t0.Add(11*time.Minute), attempt("ident:locked", t0.Add(11*time.Minute), 5)), "after the lock")

	// Concurrent attempts admit exactly the threshold.
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for range 20 {
		wg.Go(func() {
			ok, _, err := st.BeginLoginAttempts(ctx(), []store.LoginAttempt{attempt("ident:rush", t0, 5)})
			if assert.NoError(t, err) && ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(5), admitted.Load())
}
