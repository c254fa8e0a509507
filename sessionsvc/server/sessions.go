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

// sessionsEnded queues the alerts the enricher raises for ended sessions.
// The sessions are already ended: a failure to queue is logged, not returned.
func (s *Server) sessionsEnded(ctx context.Context, ended []store.Session, reason string, now time.Time) {
	if s.cfg.Enricher == nil || len(ended) == 0 {
		return
	}
	alerts := s.cfg.Enricher.SessionEnded(ctx, ended, reason, now)
	if len(alerts) == 0 {
		return
	}
	if err := s.st.EnqueueAlerts(ctx, alerts); err != nil {
		s.log.Warn("queueing alerts for ended sessions failed", "reason", reason, "count", len(alerts), "err", err)
	}
}

// SessionJSON is a session as the user and admin APIs show it (the Strapi
// plugin's field names).
type SessionJSON struct {
	ID                 string             `json:"id"`
	DocumentID         string             `json:"documentId"`
	SessionID          string             `json:"sessionId"`
	UserID             string             `json:"userId"`
	User               UserRef            `json:"user"`
	IPAddress          string             `json:"ipAddress"`
	UserAgent          string             `json:"userAgent"`
	LoginTime          time.Time          `json:"loginTime"`
	LastActive         time.Time          `json:"lastActive"`
	LogoutTime         *time.Time         `json:"logoutTime"`
	IsActive           bool               `json:"isActive"`
	TerminatedManually bool               `json:"terminatedManually"`
	TerminationReason  *string            `json:"terminationReason"`
	DeviceType         string             `json:"deviceType"`
	BrowserName        string             `json:"browserName"`
	OSName             string             `json:"osName"`
	GeoLocation        *store.GeoLocation `json:"geoLocation"`
	SecurityScore      int                `json:"securityScore"`
	ScoreReasons       []string           `json:"scoreReasons"`
	IsCurrentSession   bool               `json:"isCurrentSession"`
	IsTrulyActive      bool               `json:"isTrulyActive"`
	MinutesSinceActive int                `json:"minutesSinceActive"`
	// Discovered: registered from traffic (a token no session knew), not at its login.
	Discovered bool `json:"discovered,omitempty"`
}

// UserRef is the relation the Strapi plugin nests as "user".
type UserRef struct {
	ID string `json:"id"`
}

func toJSON(ss store.Session, currentID string, inactivity time.Duration, now time.Time) SessionJSON {
	last := ss.LastActive
	if last.IsZero() {
		last = ss.LoginTime
	}
	since := now.Sub(last)
	if since < 0 {
		since = 0
	}
	var reason *string
	if ss.TerminationReason != "" {
		r := ss.TerminationReason
		reason = &r
	}
	reasons := ss.ScoreReasons
	if reasons == nil {
		reasons = []string{}
	}
	return SessionJSON{
		ID: ss.ID, DocumentID: ss.ID, SessionID: ss.ID, UserID: ss.UserID, User: UserRef{ID: ss.UserID},
		IPAddress: ss.IP, UserAgent: ss.UserAgent, LoginTime: ss.LoginTime, LastActive: last, LogoutTime: ss.LogoutTime,
		IsActive: ss.Active, TerminatedManually: ss.TerminatedManually, TerminationReason: reason,
		DeviceType: ss.DeviceType, BrowserName: ss.BrowserName, OSName: ss.OSName, GeoLocation: ss.Geo,
		SecurityScore: ss.SecurityScore, ScoreReasons: reasons,
		IsCurrentSession:   currentID != "" && ss.ID == currentID,
		IsTrulyActive:      ss.Active && since < inactivity,
		MinutesSinceActive: int(since / time.Minute),
		Discovered:         ss.Discovered(),
	}
}

func (s *Server) toJSONList(ctx context.Context, list []store.Session, currentID string, now time.Time) ([]SessionJSON, int) {
	inactivity := s.InactivityTimeout(ctx)
	out := make([]SessionJSON, 0, len(list))
	active := 0
	for _, ss := range list {
		j := toJSON(ss, currentID, inactivity, now)
		if j.IsTrulyActive {
			active++
		}
		out = append(out, j)
	}
	return out, active
}
