package filter

import (
	"errors"
	"math/rand/v2"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// Shared-data keys, one store per vm_id shared by all workers of one Envoy.
// They carry the generation of revocation.State's serialised form: shared
// data outlives a plugin reload, and for a moment VMs of the old and the
// new plugin run side by side; each generation keeps its own sync loop.
// (g4: the published version names its epoch, and states of one epoch are
// ordered by cursor, see newer: a g3 VM would misread it.)
const (
	keyGen     = "meshsession.g4."
	keyState   = keyGen + "state"         // the published revocation state: its meta (revocation.State.Marshal)
	keyTable   = keyGen + "state.table"   // and its revoked-key table
	keyVersion = keyGen + "state.version" // "<version>/<cursor>/<epoch>" of the published state: read every tick, cheap
	// keyStamp is written (empty) after every publication: its CAS, which
	// the host renews on every write, is the cheapest "did the published
	// state move?" a request can ask (an empty value costs the host no
	// allocation in the guest: proxy-wasm-cpp-host copyToPointerSize).
	keyStamp  = keyGen + "state.stamp"
	keyLease  = keyGen + "sync.lease" // "<fetching-until ms>,<next fetch at ms>,<holder>"
	keySynced = keyGen + "sync.ok"    // unix ms of the last successful sync by any worker
	// keyFull is the version of the last state published whole; delta pages
	// after it go to keyDeltaPrefix+"<version % deltaRing>" as
	// "<version>\n<base cursor>\n<page>".
	keyFull        = keyGen + "state.full"
	keyDeltaPrefix = keyGen + "delta."
	// keyPublish is the publish lock: "<expiry ms>,<holder leaseID>", or
	// empty (free; shared data has no delete). A worker publishes only
	// holding it, from its read of keyVersion to its write, so that two
	// publications never interleave (see publish).
	keyPublish = keyGen + "publish.lock"
)

// publishLockFor bounds how long a publish lock is held: past it, a
// worker that died holding it (a VM that trapped) blocks nobody.
const publishLockFor = 2 * time.Second

// syncer keeps one worker's revocation state in step with sessionsvc. The
// workers of one Envoy share one sync loop: on each tick every worker adopts
// the state published in shared data if it changed; the one that wins the
// lease (a CAS write) fetches the next feed page, applies it and publishes
// the result. sessionsvc sees one poll per proxy per sync interval.
type syncer struct {
	plugin *pluginContext
	state  *revocation.State
	id     uint64 // leaseID
	// beforeWrite, when set (tests only), runs under the publish lock
	// between the comparison and the writes.
	beforeWrite func()

	lastSync time.Time // last successful sync known to this worker
	fetching bool      // this worker has a sync call out
	failures int       // consecutive failures, for backoff and log throttling
	relaxed  bool      // the collector runs at bigPageGCPercent (relaxGC)

	// Long-poll (sync_wait): the wait asked for by the fetch out, and
	// when it went out.
	polled      time.Duration
	fetchedAt   time.Time
	askedEpoch  string // what the fetch out asked for
	askedCursor int64

	timing // monotone adoption, syncs on demand, start-up hold (timing.go)
	local  // logouts sessionsvc could not record (local.go)
}

// relaxGC switches the collector between bigPageGCPercent and gcPercent.
func (s *syncer) relaxGC(on bool) {
	if on == s.relaxed {
		return
	}
	s.relaxed = on
	if on {
		debug.SetGCPercent(bigPageGCPercent)
	} else {
		debug.SetGCPercent(gcPercent)
	}
}

func (s *syncer) tick(t time.Time) {
	s.retryPublish()
	s.adopt()
	s.adoptLocal(t)
	if ms, ok := readInt(keySynced); ok {
		if at := time.UnixMilli(ms); at.After(s.lastSync) {
			s.lastSync = at
			s.failures = 0 // another worker synced since this one failed: no backoff
		}
	}
	if !s.fetching && s.acquire(t) {
		s.fetch(t)
	}
	if s.leased {
		s.deliverLocal() // the lease's holder reports pending logouts (local.go)
	}
	s.tidyLocal(t)
	s.timingTick(t)
}

// freshness is the last successful sync time to decide with. Workers learn
// of another worker's sync on their own tick; when this worker's view is
// already past max_staleness it reads the shared time first (one host call,
// only on that path), so a recovered sessionsvc is seen at once everywhere.
func (s *syncer) freshness(t time.Time) time.Time {
	if t.Sub(s.lastSync) <= s.plugin.cfg.MaxStaleness {
		return s.lastSync
	}
	if ms, ok := readInt(keySynced); ok {
		if at := time.UnixMilli(ms); at.After(s.lastSync) {
			s.lastSync = at
		}
	}
	return s.lastSync
}

// adopt brings this worker's state to the published version: by applying
// the published delta pages when it is only a few versions behind (cheap),
// else by reading the whole published state and the deltas after it.
func (s *syncer) adopt() {
	pv, pc, pe, ok := readVersion()
	if !ok || !newer(pv, pc, pe, s.state.Version(), s.state.Cursor(), s.state.Epoch()) {
		return
	}
	target := pv
	if s.applyDeltas(target) && s.state.Cursor() == pc && s.state.Epoch() == pe {
		return
	}
	// (Deltas can lead to the published version but not to its cursor: a
	// state published whole beside them, see publish. The whole state then.)
	var st *revocation.State
	var err error
	for range 2 { // twice: a new state may be published between the two reads
		meta, _, merr := proxywasm.GetSharedData(keyState)
		table, _, terr := proxywasm.GetSharedData(keyTable)
		if merr != nil || terr != nil || len(meta) == 0 {
			return
		}
		if st, err = revocation.Unmarshal(meta, table); err == nil {
			break
		}
	}
	if err != nil {
		s.plugin.metrics.syncFailure.Increment(1)
		proxywasm.LogErrorf("meshsession: shared revocation state unreadable, keeping mine: %v", err)
		return
	}
	s.applyDeltasTo(st, target) // the changes published after that state, if any
	// Never step back: a worker keeps what it enforces until the published
	// state has caught up with it (a refusal must stay a refusal).
	if newer(st.Version(), st.Cursor(), st.Epoch(), s.state.Version(), s.state.Cursor(), s.state.Epoch()) {
		s.state = st
	}
}

// applyDeltas applies the published delta pages after this worker's version
// up to target. It reports false, leaving a consistent (possibly older)
// state, when one is missing, overwritten or does not lead to the same
// version as it did on the worker that fetched it.
func (s *syncer) applyDeltas(target uint64) bool {
	return s.applyDeltasTo(s.state, target)
}

// applyDeltasTo is applyDeltas for any state.
func (s *syncer) applyDeltasTo(st *revocation.State, target uint64) bool {
	cur := st.Version()
	if target <= cur || target-cur >= deltaRing || st.Building() {
		return false
	}
	t := now()
	for u := cur + 1; u <= target; u++ {
		val, _, err := proxywasm.GetSharedData(deltaKey(u))
		if err != nil {
			return false
		}
		// "<version>\n<cursor the page was applied at>\n<page>": a page
		// applies only to the very state it was fetched for.
		ver, rest, ok := strings.Cut(string(val), "\n")
		if !ok || ver != strconv.FormatUint(u, 10) {
			return false
		}
		base, body, ok := strings.Cut(rest, "\n")
		if !ok || base != strconv.FormatInt(st.Cursor(), 10) {
			return false
		}
		if _, err := st.ApplyPage([]byte(body), t); err != nil || st.Version() != u {
			return false
		}
	}
	return true
}

// Delta pages are published in a ring of shared-data keys; a page larger
// than maxDelta, a snapshot, or a state more than fullEvery versions past
// the last full one is published whole instead.
const (
	deltaRing = 64
	maxDelta  = 64 << 10
	fullEvery = deltaRing / 2
)

func deltaKey(v uint64) string {
	return keyDeltaPrefix + strconv.FormatUint(v%deltaRing, 10)
}

// lease is the shared fetch lease: a fetch is in flight until until (unix
// ms), and the next one may start at next; holder is the leaseID of the
// worker that took it. cas is what it was read with.
type lease struct {
	until, next int64
	holder      uint64
	cas         uint32
}

// readLease reads the lease; a missing one is free (cas 0).
func readLease() (lease, bool) {
	val, cas, err := proxywasm.GetSharedData(keyLease)
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		return lease{}, false
	}
	l := lease{cas: cas}
	if a, rest, ok := strings.Cut(string(val), ","); ok {
		b, c, _ := strings.Cut(rest, ",")
		l.until, _ = strconv.ParseInt(a, 10, 64)
		l.next, _ = strconv.ParseInt(b, 10, 64)
		l.holder, _ = strconv.ParseUint(c, 10, 64)
	}
	return l, true
}

// write stores the lease if nobody changed it since it was read.
func (l lease) write() error {
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, l.until, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, l.next, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, l.holder, 10)
	return proxywasm.SetSharedData(keyLease, b, l.cas)
}

// holdsLease reports whether the lease is still this worker's.
func (s *syncer) holdsLease() bool {
	l, ok := readLease()
	return ok && l.holder == s.leaseID()
}

// leaseID names this worker in the lease: a worker whose long-poll
// outlived the lease (a stalled worker, a slow answer) finds another
// holder there, and stops instead of long-polling beside it.
func (s *syncer) leaseID() uint64 {
	for s.id == 0 {
		s.id = rand.Uint64()
	}
	return s.id
}

// acquire takes the fetch lease when it is free and the interval has passed.
func (s *syncer) acquire(t time.Time) bool {
	nowMs := t.UnixMilli()
	l, ok := readLease()
	if !ok || nowMs < l.until || nowMs < l.next {
		return false
	}
	cfg := s.plugin.cfg
	interval := cfg.SyncInterval
	if s.failures > 0 {
		// Back off while sessionsvc fails, but only to twice the interval:
		// one poll per proxy is cheap, and recovery must be seen quickly.
		interval *= 2
	}
	l.until = nowMs + (cfg.Timeout + cfg.SyncWait).Milliseconds() + 1000
	l.next = nowMs + interval.Milliseconds()
	l.holder = s.leaseID()
	if err := l.write(); err != nil {
		return false // another worker won
	}
	s.fetching, s.leased = true, true
	return true
}

// release ends a fetch chain, freeing the lease (if it holds it) but
// keeping its next-fetch time.
func (s *syncer) release() {
	s.fetching, s.again = false, false
	if !s.leased {
		return
	}
	s.leased = false
	if l, ok := readLease(); ok && l.holder == s.leaseID() {
		l.until = 0
		_ = l.write()
	}
}

func (s *syncer) fetch(t time.Time) {
	cfg := s.plugin.cfg
	epoch, cursor := s.state.Next()
	path := s.syncPath(epoch, cursor)
	// The worker holding the lease long-polls (sync_wait): sessionsvc
	// answers when the log moves. A fetch that waiters depend on (a logout
	// or revoking route, syncNow) never waits, nor one made without the
	// lease.
	wait := time.Duration(0)
	if s.leased && len(s.waiters) == 0 && !s.state.Building() {
		wait = cfg.SyncWait
	}
	if wait > 0 {
		path += "&wait=" + strconv.FormatInt(wait.Milliseconds(), 10) + "ms"
	}
	s.polled, s.fetchedAt = wait, t
	s.askedEpoch, s.askedCursor = epoch, cursor
	err := s.plugin.calloutTimeout("GET", path, nil, cfg.Timeout+wait, func(status int, body []byte, err error) {
		s.done(status, body, err)
	})
	if err != nil {
		s.fail(t, "dispatch sync: "+err.Error())
	}
}

// syncPath is the sync feed's path for the page after cursor.
func (s *syncer) syncPath(epoch string, cursor int64) string {
	return protocol.PathSync + "?epoch=" + url.QueryEscape(epoch) + "&cursor=" + strconv.FormatInt(cursor, 10) +
		"&limit=" + strconv.Itoa(s.plugin.cfg.SyncPageSize) + "&format=" + protocol.FormatBinary
}

func (s *syncer) done(status int, body []byte, err error) {
	t := now()
	switch {
	case err != nil:
		s.fail(t, err.Error())
		return
	case status != 200:
		s.fail(t, "sessionsvc answered "+strconv.Itoa(status)+" to sync: "+snippet(body))
		return
	}
	if e, c := s.state.Next(); e != s.askedEpoch || c != s.askedCursor {
		// This worker adopted a newer published state while the call was
		// out (another worker synced: likely while a long-poll waits): the
		// page answers an older cursor. Ask again from where the state is
		// (when another worker took the lease over meanwhile, only for
		// the waiters, without waiting).
		if s.leased && !s.holdsLease() {
			s.leased = false
			if len(s.waiters) == 0 {
				s.releaseUntil(t)
				s.wake(t)
				return
			}
		}
		s.fetch(t)
		return
	}
	if len(body) > maxDelta || s.state.Building() {
		// A big page, or a snapshot being built: applying it allocates a
		// table at once and drops the old one, and at gcPercent the
		// collector would run several times on the way (measured: 100k
		// entries applied in about 60 ms instead of 30). The collector
		// stays relaxed until the snapshot is complete (switching per page
		// costs a collection each time).
		s.relaxGC(true)
	}
	defer func() {
		if !s.state.Building() {
			s.relaxGC(false)
		}
	}()
	applied, err := s.apply(body, t)
	if err != nil {
		if errors.Is(err, revocation.ErrNeedSnapshot) {
			s.state.AbortSnapshot()
		}
		s.fail(t, err.Error())
		return
	}
	s.failures = 0
	if applied.More || s.again {
		// Keep the lease: fetch the next page now (or once more, for a
		// sync asked for while this one was out).
		s.again = false
		s.fetch(t)
		return
	}
	if s.polled > 0 && s.waitAgain(t, applied) && s.renewLease(t) {
		// Push: wait again at once, keeping the lease; what the answer
		// brought is published, so its waiters can go.
		s.wake(t)
		s.fetch(t)
		return
	}
	// Success: the next fetch at the normal pace, whatever backoff the
	// lease was taken with.
	s.releaseUntil(t.Add(s.plugin.cfg.SyncInterval))
	s.wake(t)
}

// apply applies a fetched page at t and, when it took, records the sync
// (for this worker and, through keySynced, for every worker) and publishes
// what it changed.
func (s *syncer) apply(body []byte, t time.Time) (revocation.Applied, error) {
	before, baseCursor := s.state.Version(), s.state.Cursor()
	applied, err := s.state.ApplyPage(body, t)
	if err != nil {
		return applied, err
	}
	s.lastSync = t
	s.plugin.metrics.syncSuccess.Increment(1)
	_ = putShared(keySynced, []byte(strconv.FormatInt(t.UnixMilli(), 10)))
	s.noteKept(applied)
	if s.state.Version() != before {
		s.publish(body, before, baseCursor, applied)
	}
	return applied, nil
}

// waitAgain decides, after the answer to a long-poll (a fetch that asked
// sessionsvc to wait), whether the next one goes out at once. It does
// when the answer brought changes, or when sessionsvc did wait (the
// answer came after half the wait or more), or when this worker asked for
// its first snapshot (a snapshot is answered at once: nothing to wait
// for; waiting starts with the next fetch). An empty delta answered at
// once means this sessionsvc did not wait: an older one that ignores
// wait=, one whose change listener is down, one shutting down. The next
// fetch then goes out after sync_interval (the 500 ms poll), and asks to
// wait again: whichever sessionsvc answers it decides. Never one fetch
// right after another without a change or a wait between them.
func (s *syncer) waitAgain(t time.Time, applied revocation.Applied) bool {
	return applied.Changes > 0 || t.Sub(s.fetchedAt) >= s.polled/2 || s.askedEpoch == ""
}

// renewLease extends the lease this worker holds for another long-poll.
func (s *syncer) renewLease(t time.Time) bool {
	if !s.leased {
		return false
	}
	l, ok := readLease()
	if !ok {
		return false
	}
	if l.holder != s.leaseID() {
		s.leased = false // taken over: the holder goes on
		return false
	}
	cfg := s.plugin.cfg
	l.until = t.UnixMilli() + (cfg.Timeout + cfg.SyncWait).Milliseconds() + 1000
	l.next = t.UnixMilli() + cfg.SyncInterval.Milliseconds()
	return l.write() == nil
}

// releaseUntil ends a fetch chain, freeing the lease (if it holds it) and
// setting the next fetch time.
func (s *syncer) releaseUntil(next time.Time) {
	s.fetching, s.again = false, false
	if !s.leased {
		return
	}
	s.leased = false
	if l, ok := readLease(); ok && l.holder == s.leaseID() {
		l.until, l.next = 0, next.UnixMilli()
		_ = l.write()
	}
}

// publish makes this worker's new state known to the others, unless another
// worker published a newer one meanwhile: as the delta page that produced
// it when that is small and recent enough and was applied to the very
// state that is published, else whole.
//
// A page fetched beside another worker's (a sync on demand beside the
// lease's long-poll, from the same state) leads to a state of the same
// version with another cursor; when that one was published, this page
// does not apply to it, and published as a delta it would break the chain
// every worker follows: they would stay behind, enforcing nothing new,
// until the next whole publication (up to fullEvery versions later).
//
// Two workers publishing at once interleaved: an older state could be
// written last over a newer one (or table, meta and version of two
// publishers mixed), and the worker whose newer state was lost released
// its logout's answer while the others adopted a state without it. So a
// worker publishes only holding the publish lock (keyPublish, taken with
// CAS), and compares with the published version under it. It reports
// false when it could not take the lock: nothing was written, and s.unpublished
// keeps the waiters of this state (wake) until a later publish (retryPublish,
// on the tick) puts it, or a state at least as new, in shared data.
// Otherwise true (published, a state at least as new was, or a write
// failed: logged, and the waiters go as before).
func (s *syncer) publish(page []byte, baseVersion uint64, baseCursor int64, applied revocation.Applied) bool {
	t := now()
	if !s.lockPublish(t) {
		s.unpublished = true
		return false
	}
	defer s.unlockPublish()
	s.unpublished = false
	v := s.state.Version()
	pv, pc, pe, published := readVersion()
	if published && !newer(v, s.state.Cursor(), s.state.Epoch(), pv, pc, pe) {
		return true
	}
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	full, haveFull := readInt(keyFull)
	delta := page != nil && !applied.Swapped && !applied.Reset && len(page) <= maxDelta && haveFull && v-uint64(full) < fullEvery &&
		published && pv == baseVersion && pc == baseCursor && pe == s.state.Epoch()
	if delta {
		buf := make([]byte, 0, 48+len(page))
		buf = strconv.AppendUint(buf, v, 10)
		buf = append(buf, '\n')
		buf = strconv.AppendInt(buf, baseCursor, 10)
		buf = append(buf, '\n')
		buf = append(buf, page...)
		if err := putShared(deltaKey(v), buf); err != nil {
			delta = false
		}
	}
	if !delta {
		// The table first: a worker reading the new meta finds its table.
		meta, table := s.state.Marshal()
		if err := putShared(keyTable, table); err != nil {
			proxywasm.LogErrorf("meshsession: publish revocation state (%d bytes): %v", len(table), err)
			return true
		}
		if err := putShared(keyState, meta); err != nil {
			proxywasm.LogErrorf("meshsession: publish revocation state: %v", err)
			return true
		}
		_ = putShared(keyFull, []byte(strconv.FormatUint(v, 10)))
	}
	_ = putShared(keyVersion, []byte(strconv.FormatUint(v, 10)+"/"+strconv.FormatInt(s.state.Cursor(), 10)+"/"+s.state.Epoch()))
	s.bumpStamp()
	return true
}

// lockPublish takes the publish lock (free, expired, or already this
// worker's) with a CAS write.
func (s *syncer) lockPublish(t time.Time) bool {
	val, cas, err := proxywasm.GetSharedData(keyPublish)
	if errors.Is(err, types.ErrorStatusNotFound) {
		// Never written (createPublishLock runs at start; this is a
		// fallback): create it free, then take it with CAS like any
		// other time.
		createPublishLock()
		val, cas, err = proxywasm.GetSharedData(keyPublish)
	}
	if err != nil || cas == 0 {
		return false
	}
	if exp, holder, ok := strings.Cut(string(val), ","); ok {
		ms, _ := strconv.ParseInt(exp, 10, 64)
		if t.UnixMilli() < ms && holder != strconv.FormatUint(s.leaseID(), 10) {
			return false // another worker is publishing
		}
	}
	b := strconv.AppendInt(make([]byte, 0, 48), t.Add(publishLockFor).UnixMilli(), 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, s.leaseID(), 10)
	return proxywasm.SetSharedData(keyPublish, b, cas) == nil
}

// createPublishLock creates the publish lock, free, if it does not exist
// (plugin start). Envoy takes cas 0 as an unconditional write, so only an
// existing key can be taken with CAS; created at start, before any worker
// has a state to publish, the creation cannot overwrite a lock held (the
// key is never deleted afterwards).
func createPublishLock() {
	if _, _, err := proxywasm.GetSharedData(keyPublish); errors.Is(err, types.ErrorStatusNotFound) {
		_ = proxywasm.SetSharedData(keyPublish, nil, 0)
	}
}

// unlockPublish frees the publish lock if it is still this worker's.
func (s *syncer) unlockPublish() {
	val, cas, err := proxywasm.GetSharedData(keyPublish)
	if err != nil {
		return
	}
	if _, holder, _ := strings.Cut(string(val), ","); holder == strconv.FormatUint(s.leaseID(), 10) {
		_ = proxywasm.SetSharedData(keyPublish, nil, cas)
	}
}

// retryPublish publishes, whole, a state whose publication found the
// lock taken, and then lets its waiters go (tick).
func (s *syncer) retryPublish() {
	if !s.unpublished || !s.publish(nil, 0, 0, revocation.Applied{}) {
		return
	}
	ws := s.pubWaiters
	s.pubWaiters = nil
	for _, w := range ws {
		w()
	}
}

func (s *syncer) fail(t time.Time, msg string) {
	s.failures++
	s.plugin.metrics.syncFailure.Increment(1)
	if s.failures == 1 || s.failures%20 == 0 {
		proxywasm.LogWarnf("meshsession: sync failed (%d in a row, last success %s ago): %s",
			s.failures, t.Sub(s.lastSync).Truncate(time.Millisecond), msg)
	}
	s.release()
	s.wake(t)
}

// putShared writes key whatever its current value. Envoy takes cas=0 as an
// unconditional write; a host that does not (the SDK's emulator treats it
// as a mismatch on an existing key) gets the CAS just read. (Reading first
// every time would copy a value as big as the state into the VM for
// nothing.)
func putShared(key string, value []byte) error {
	err := proxywasm.SetSharedData(key, value, 0)
	if err == nil || !errors.Is(err, types.ErrorStatusCasMismatch) {
		return err
	}
	for i := 0; i < 3; i++ {
		_, cas, gerr := proxywasm.GetSharedData(key)
		if gerr != nil {
			cas = 0
		}
		if err = proxywasm.SetSharedData(key, value, cas); err == nil {
			return nil
		}
	}
	return err
}

// readVersion reads the published state's version, cursor and epoch.
func readVersion() (version uint64, cursor int64, epoch string, ok bool) {
	val, _, err := proxywasm.GetSharedData(keyVersion)
	if err != nil || len(val) == 0 {
		return 0, 0, "", false
	}
	a, rest, _ := strings.Cut(string(val), "/")
	b, epoch, _ := strings.Cut(rest, "/") // the epoch last: it is sessionsvc's, any text
	v, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, "", false
	}
	c, _ := strconv.ParseInt(b, 10, 64)
	return v, c, epoch, true
}

// newer orders states. Within one epoch the cursor says what a state
// holds (every change of sessionsvc's log up to it), whatever way it got
// there: a sync on demand beside the lease's fetches branches off the
// published chain, and its state (fewer pages, so a lower version) may
// carry a revocation the lease's higher versions still lack; ordered by
// version, it was not published and its worker stepped back to the
// lease's state, forgetting the revocation whose answer it had released.
// So: the cursor first, then the version (two ways to one cursor hold the
// same). Across epochs (a store reset: cursors start again) the version
// says which came later, then the cursor.
func newer(v uint64, cursor int64, epoch string, thanV uint64, thanCursor int64, thanEpoch string) bool {
	if epoch == thanEpoch {
		return cursor > thanCursor || cursor == thanCursor && v > thanV
	}
	return v > thanV || v == thanV && cursor > thanCursor
}

func readInt(key string) (int64, bool) {
	val, _, err := proxywasm.GetSharedData(key)
	if err != nil || len(val) == 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(val), 10, 64)
	return v, err == nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// soon makes the next tick of any worker sync (after a logout or a refused
// refresh, so the revocation reaches every worker without waiting an interval).
func (s *syncer) soon() {
	if l, ok := readLease(); ok {
		l.next = 0
		_ = l.write()
	}
}
