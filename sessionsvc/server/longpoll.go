package server

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// MaxSyncWait bounds a long-poll on the sync feed (wait=): below the
// plugin's callout timeout and well below the server's write timeout.
const MaxSyncWait = 25 * time.Second

// changeWaiter is a store whose sync feed can long-poll (both of ours).
type changeWaiter interface {
	WaitChanges(ctx context.Context, epoch string, cursor int64, limit int, wait time.Duration, now func() time.Time) (protocol.SyncPage, error)
}

// parseWait reads wait= as seconds ("25", "0.5") or a Go duration
// ("25s", "500ms"), capped at MaxSyncWait. Empty or 0: no waiting.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "eEnNiI") {
		if f < 0 || f > 3600 {
			return 0, badRequest("wait must be between 0 and %d seconds", int(MaxSyncWait/time.Second))
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		pd, err := time.ParseDuration(v)
		if err != nil || pd < 0 || len(v) > 16 {
			return 0, badRequest("wait must be seconds or a duration such as 25s")
		}
		d = pd
	}
	return min(d, MaxSyncWait), nil
}

// changes reads the sync feed; with wait > 0 and nothing after the
// cursor, it answers when the log moves (any replica) or wait passes,
// whichever comes first. Waiting costs no database query.
func (s *Server) changes(ctx context.Context, epoch string, cursor int64, limit int, wait time.Duration) (protocol.SyncPage, error) {
	if w, ok := s.st.(changeWaiter); ok && wait > 0 {
		s.metrics.syncWaiting.Inc()
		s.waiting.Add(1)
		defer func() {
			s.waiting.Add(-1)
			s.metrics.syncWaiting.Dec()
		}()
		return w.WaitChanges(ctx, epoch, cursor, limit, wait, s.nowUTC)
	}
	return s.st.Changes(ctx, epoch, cursor, limit, s.nowUTC())
}

// syncWaitingAtLeast reports whether at least n sync requests are waiting.
func (s *Server) syncWaitingAtLeast(n int) bool { return s.waiting.Load() >= int64(n) }
