package filter

import "time"

// longPolling reports whether this worker's fetch out is a long-poll of a
// worker that has its state (not a snapshot being built).
func (s *syncer) longPolling() bool {
	return s.fetching && s.polled > 0 && s.ready() && !s.state.Building()
}

// syncAside serves a sync on demand (syncNow) asked for while this
// worker's long-poll is out: a fetch that does not wait, beside the
// long-poll, for this waiter alone (the long-poll's answer, asked for
// before, must not release it). Its page is applied and published as any
// other (a page fetched beside the lease's is published only on the
// state it was applied to, see publish); the long-poll, when it answers,
// finds the state moved and asks again from there. Waiters that come
// while it is out get the next one.
func (s *syncer) syncAside(caller uint32, done func()) {
	if s.aside {
		s.asideNext = append(s.asideNext, done)
		return
	}
	s.aside = true
	runAs(s.plugin.contextID, caller, func() { s.fetchAside(now(), []func(){done}) })
}

func (s *syncer) fetchAside(t time.Time, ws []func()) {
	epoch, cursor := s.state.Next()
	err := s.plugin.calloutTimeout("GET", s.syncPath(epoch, cursor), nil, s.plugin.cfg.Timeout, func(status int, body []byte, err error) {
		s.asideDone(ws, epoch, cursor, status, body, err)
	})
	if err != nil {
		s.asideDone(ws, epoch, cursor, 0, nil, err)
	}
}

// asideDone applies what a fetch beside the long-poll brought, then runs
// its waiters (whether it succeeded or not, as a failed sync does).
func (s *syncer) asideDone(ws []func(), epoch string, cursor int64, status int, body []byte, err error) {
	t := now()
	switch e, c := s.state.Next(); {
	case err != nil || status != 200:
		s.plugin.metrics.syncFailure.Increment(1)
	case e != epoch || c != cursor:
		// The state moved while the call was out (the long-poll answered,
		// or another worker published): ask again from where it is.
		s.fetchAside(t, ws)
		return
	case !s.state.Building():
		applied, aerr := s.apply(body, t)
		if aerr != nil {
			s.plugin.metrics.syncFailure.Increment(1)
			break
		}
		if applied.More {
			s.fetchAside(t, ws)
			return
		}
	}
	s.aside = false
	s.releaseWaiters(ws)
	if next := s.asideNext; len(next) > 0 {
		s.asideNext = nil
		switch {
		case s.longPolling():
			s.aside = true
			s.fetchAside(t, next)
		case s.fetching: // a fetch that does not wait: once more after it
			s.waiters = append(s.waiters, next...)
			s.again = true
		default:
			s.waiters = append(s.waiters, next...)
			s.fetching, s.leased = true, false
			s.fetch(t)
		}
	}
	s.releaseHeld(t)
}
