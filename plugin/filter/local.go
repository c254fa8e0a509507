package filter

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// Logouts sessionsvc could not record (see revocation.Local):
//
//   - The logout route reports the logout (POST /internal/v1/revoke)
//     before the request goes on to the app. When that call fails or is
//     answered non-2xx, the token's keys go to the proxy's list of local
//     revocations, published under keyLocal (CAS-updated, as the lease)
//     and announced through keyStamp: every worker refuses the token from
//     its next request on, and keeps refusing it while sessionsvc is down.
//     The logout then goes on to the app, whose answer the client gets.
//   - The worker holding the sync lease reports the pending ones, oldest
//     first, on its ticks (one call out at a time; the next one as soon as
//     one is accepted), so at the lease's pace: sync_interval, twice that
//     while sessionsvc fails.
//   - An entry is dropped once its report is delivered and the feed
//     carries it (the state refuses the token), or once its token expired.
//   - A logout sessionsvc did record, but whose follow-up sync failed, is
//     listed as delivered: enforced at once, dropped when the feed has it.
//   - The list holds at most pending_logouts entries: past that a new one
//     is not kept (the oldest are), logged and counted.

// keyLocal is the shared list of local revocations (revocation.Local's
// serialised form; empty: none).
const keyLocal = keyGen + "local"

// keyReport is the lease of the worker reporting pending logouts:
// "<until unix ms>,<holder leaseID>". A report chain outlives the sync
// lease that started it (the sync may answer first): this one keeps two
// workers from reporting the same logout side by side.
const keyReport = keyGen + "local.report"

// localCasTries bounds the CAS retries of one update of keyLocal.
const localCasTries = 8

// local is the syncer's part for the above.
type local struct {
	list           *revocation.Local // this worker's copy, which the Engine consults
	listCas        uint32            // keyLocal's CAS list was read at
	haveListCas    bool
	delivering     bool // a report is out
	reporting      bool // this worker took the report lease (keyReport)
	reportFailures int  // consecutive failed reports, for log throttling

	pendingCounter, reportedCounter, droppedCounter proxywasm.MetricCounter
}

// startLocal sets up the local revocations at plugin start: the Engine
// consults the worker's copy; the shared list is created if absent (a
// write with cas 0 is unconditional only on a new key: creating it now
// makes every later update a CAS on an existing one; the report lease
// too) and adopted.
func (s *syncer) startLocal() {
	c := func(n string) proxywasm.MetricCounter { return proxywasm.DefineCounterMetric(metricPrefix + n) }
	s.pendingCounter = c("logouts_pending")
	s.reportedCounter = c("logouts_reported_late")
	s.droppedCounter = c("logouts_pending_dropped")
	s.list = revocation.NewLocal(s.plugin.cfg.PendingLogouts)
	s.plugin.engine.SetLocal(s.list)
	if _, ok := sharedCas(keyLocal); !ok {
		_ = proxywasm.SetSharedData(keyLocal, nil, 0)
	}
	if _, ok := sharedCas(keyReport); !ok {
		_ = proxywasm.SetSharedData(keyReport, []byte("0,0"), 0)
	}
	s.adoptLocal(now())
}

// adoptLocal brings this worker's copy to the shared list when it changed
// (one host call when it did not).
func (s *syncer) adoptLocal(t time.Time) {
	cas, ok := sharedCas(keyLocal)
	if !ok || s.haveListCas && cas == s.listCas {
		return
	}
	val, cas, err := proxywasm.GetSharedData(keyLocal)
	if err != nil {
		return
	}
	next, err := revocation.UnmarshalLocal(val, s.plugin.cfg.PendingLogouts)
	s.listCas, s.haveListCas = cas, true
	if err != nil {
		proxywasm.LogErrorf("meshsession: shared list of pending logouts unreadable, keeping mine: %v", err)
		return
	}
	s.list.Replace(next, s.state, t.Unix())
}

// updateLocal applies fn to the shared list and writes it back if fn
// changed it (fn reports whether it did), retrying when another worker
// wrote meanwhile; then this worker's copy is the list written (or read).
// It reports false when the list could not be written.
func (s *syncer) updateLocal(t time.Time, fn func(l *revocation.Local) bool) bool {
	limit := s.plugin.cfg.PendingLogouts
	for i := 0; i < localCasTries; i++ {
		val, cas, err := proxywasm.GetSharedData(keyLocal)
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogErrorf("meshsession: read pending logouts: %v", err)
			return false
		}
		l, perr := revocation.UnmarshalLocal(val, limit)
		if perr != nil {
			proxywasm.LogErrorf("meshsession: shared list of pending logouts unreadable, rewritten: %v", perr)
			l = revocation.NewLocal(limit)
		}
		if !fn(l) {
			s.list.Replace(l, s.state, t.Unix())
			s.listCas, s.haveListCas = cas, true
			return true
		}
		if err := proxywasm.SetSharedData(keyLocal, l.Marshal(), cas); err != nil {
			if errors.Is(err, types.ErrorStatusCasMismatch) {
				continue // another worker wrote: again, on what it wrote
			}
			proxywasm.LogErrorf("meshsession: write pending logouts (%d): %v", l.Len(), err)
			return false
		}
		s.list.Replace(l, s.state, t.Unix())
		// The CAS this write got is not known (another worker may write
		// right after): read the list again on the next tick.
		s.haveListCas = false
		s.bumpStamp() // every worker adopts it on its next request
		return true
	}
	proxywasm.LogErrorf("meshsession: pending logouts: %d concurrent updates in a row, giving up", localCasTries)
	return false
}

// revokeLocally enforces a logout on every worker of this proxy: the
// token's keys (and expiry, Unix seconds; 0: none) go to the shared list
// of local revocations. delivered: sessionsvc has recorded it (only the
// feed lags), nothing to report.
func (s *syncer) revokeLocally(t time.Time, keys []string, reason string, exp int64, delivered bool) {
	e := revocation.NewLocalEntry(keys, reason, exp, t.UnixMilli())
	e.Delivered = delivered
	var res revocation.AddResult
	ok := s.updateLocal(t, func(l *revocation.Local) bool {
		res = l.Add(e, t.Unix())
		return res == revocation.LocalAdded || res == revocation.LocalPresent
	})
	switch {
	case res == revocation.LocalFull:
		s.droppedCounter.Increment(1)
		proxywasm.LogErrorf("meshsession: %d logouts already pending on this proxy (pending_logouts): this one is not enforced until sessionsvc records it", s.list.Limit())
		return
	case !ok:
		// Not published: enforced on this worker at least.
		s.list.Add(e, t.Unix())
	}
	if !delivered && res == revocation.LocalAdded {
		s.pendingCounter.Increment(1)
	}
}

// deliverLocal reports the oldest pending logout to sessionsvc, if none
// is out; once one is accepted, the next goes at once. Called on the
// ticks of the worker holding the sync lease.
func (s *syncer) deliverLocal() {
	if s.delivering || s.list.Len() == 0 {
		return
	}
	if _, ok := s.list.NextUndelivered(); !ok {
		s.releaseReport()
		return
	}
	t := now()
	if !s.claimReport(t) {
		return
	}
	// The list as it is now: the worker that held the report lease before
	// marked what it reported before it let the lease go.
	s.adoptLocal(t)
	e, ok := s.list.NextUndelivered()
	if !ok {
		s.releaseReport()
		return
	}
	body := authflow.EncodeRevoke(protocol.RevokeRequest{Keys: e.Keys, Reason: e.Reason})
	s.delivering = true
	err := s.plugin.callout("POST", protocol.PathRevoke, body, func(status int, resp []byte, err error) {
		s.delivering = false
		t := now()
		if err != nil || status/100 != 2 && status != 400 {
			s.releaseReport()
			s.reportFailures++
			if s.reportFailures == 1 || s.reportFailures%20 == 0 {
				proxywasm.LogWarnf("meshsession: %d pending logouts still not recorded by sessionsvc (%d tries in a row, status %d, %v): %s",
					s.list.Undelivered(), s.reportFailures, status, err, snippet(resp))
			}
			return
		}
		s.reportFailures = 0
		if status == 400 {
			// Refused for good (it will never take it): enforced here
			// until the token expires, reported no more.
			proxywasm.LogErrorf("meshsession: sessionsvc refused a pending logout (400): %s; enforced on this proxy until the token expires", snippet(resp))
		} else {
			s.reportedCounter.Increment(1)
		}
		s.updateLocal(t, func(l *revocation.Local) bool { return l.MarkDelivered(e.ID) })
		s.soon() // the feed carries it from the next sync
		s.deliverLocal()
	})
	if err != nil {
		s.delivering = false
		s.releaseReport()
	}
}

// claimReport takes (or renews) the report lease for one report.
func (s *syncer) claimReport(t time.Time) bool {
	val, cas, err := proxywasm.GetSharedData(keyReport)
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		return false
	}
	a, b, _ := strings.Cut(string(val), ",")
	until, _ := strconv.ParseInt(a, 10, 64)
	holder, _ := strconv.ParseUint(b, 10, 64)
	if holder != s.leaseID() && t.UnixMilli() < until {
		return false // another worker's chain is out
	}
	v := strconv.AppendInt(nil, t.Add(s.plugin.cfg.Timeout+time.Second).UnixMilli(), 10)
	v = append(v, ',')
	v = strconv.AppendUint(v, s.leaseID(), 10)
	s.reporting = proxywasm.SetSharedData(keyReport, v, cas) == nil
	return s.reporting
}

// releaseReport frees the report lease if this worker holds it.
func (s *syncer) releaseReport() {
	if !s.reporting {
		return
	}
	s.reporting = false
	val, cas, err := proxywasm.GetSharedData(keyReport)
	if err != nil {
		return
	}
	_, b, _ := strings.Cut(string(val), ",")
	if holder, _ := strconv.ParseUint(b, 10, 64); holder == s.leaseID() {
		_ = proxywasm.SetSharedData(keyReport, []byte("0,0"), cas)
	}
}

// tidyLocal drops what the feed now carries, and what expired (on ticks).
func (s *syncer) tidyLocal(t time.Time) {
	if s.list.Len() == 0 || !s.list.Prunable(s.state, t.Unix()) {
		return
	}
	s.updateLocal(t, func(l *revocation.Local) bool { return l.Prune(s.state, t.Unix()) > 0 })
}
