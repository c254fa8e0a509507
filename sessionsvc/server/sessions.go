package server

import (
	"context"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// endSessions ends sessions through the store, then raises the enricher's
// alerts for them (session.terminated / user.blocked).
func (s *Server) endSessions(ctx context.Context, f store.EndFilter, reason string, manual bool, now time.Time) ([]string, error) {
	ids, err := s.st.EndSessions(ctx, f, reason, manual, now)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return ids, nil
	}
	s.metrics.ended.WithLabelValues(reason).Add(float64(len(ids)))
	s.log.Info("sessions ended", "count", len(ids), "reason", reason, "user", f.UserID, "manual", manual)
	if s.cfg.Enricher != nil {
		var ended []store.Session
		for i, id := range ids {
			if i >= 1000 {
				break
			}
			if sess, err := s.st.GetSession(ctx, id); err == nil {
				ended = append(ended, *sess)
			}
		}
		s.sessionsEnded(ctx, ended, reason, now)
	}
	return ids, nil
}

// userBlocked queues the alerts of an admin's block of userID (ended: the
// sessions the block ended, possibly none). A failure is logged: the block
// has happened.
func (s *Server) userBlocked(ctx context.Context, userID string, ended []store.Session, now time.Time) {
	if s.cfg.Enricher == nil {
		return
	}
	s.queueAlerts(ctx, s.cfg.Enricher.UserBlocked(ctx, userID, ended, now), "the alerts of a block", "user", userID)
}

// sessionsEnded queues the alerts the enricher raises for ended sessions.
// The sessions are already ended: a failure to queue is logged, not returned.
func (s *Server) sessionsEnded(ctx context.Context, ended []store.Session, reason string, now time.Time) {
	if s.cfg.Enricher == nil || len(ended) == 0 {
		return
	}
	s.queueAlerts(ctx, s.cfg.Enricher.SessionEnded(ctx, ended, reason, now), "alerts for ended sessions", "reason", reason)
}

// queueAlerts writes alerts raised after their event's commit to the
// outbox; a failure is logged ("queueing <what> failed", attrs), as the
// event stands (README: which alerts share their event's transaction).
func (s *Server) queueAlerts(ctx context.Context, alerts []store.Alert, what string, attrs ...any) {
	if len(alerts) == 0 {
		return
	}
	if err := s.st.EnqueueAlerts(ctx, alerts); err != nil {
		s.log.Warn("queueing "+what+" failed", append(attrs, "count", len(alerts), "err", err)...)
	}
}
