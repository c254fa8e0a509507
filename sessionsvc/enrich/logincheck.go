package enrich

import (
	"context"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip"
	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/enrich/score"
)

// RequestDecision is the policy's answer to a login request, before the app
// has seen it: what the address alone decides.
type RequestDecision struct {
	Deny    bool
	Message string // shown to the client when denied
	Score   int    // the address's score (reputation only)
}

// LoginChecker decides a login on its request. *Service implements it; the
// server's pre-login check uses it when the Enricher does.
type LoginChecker interface {
	CheckLoginRequest(ctx context.Context, ip, userAgent string, at time.Time) (RequestDecision, error)
}

var _ LoginChecker = (*Service)(nil)

// CheckLoginRequest applies what the policy can decide from the request
// alone: allowed and blocked countries, Tor, VPN, proxy, threat and
// datacenter networks, and the minimum score against the address's
// reputation score. That score is an upper bound of the login's full score
// (history signals only deduct), so a login refused here would be refused
// at registration too. New device, new country and impossible travel need
// the user, known only from the app's answer: they stay at registration.
func (s *Service) CheckLoginRequest(ctx context.Context, ip, _ string, _ time.Time) (RequestDecision, error) {
	p := s.policy()
	addr, err := geoip.ParseIP(ip)
	if err != nil {
		// No usable address: only the rules that need none apply (none do).
		return RequestDecision{Score: 100}, nil
	}
	var flags reputation.Flags = s.lists.Check(addr)
	res := Result{}
	if !p.DisableGeolocation {
		res.Geo = s.locate(addr)
	}
	sc := score.Compute(p.Score, score.Input{Flags: flags}).Score
	if msg := decide(p, res.Geo, flags, sc); msg != "" {
		return RequestDecision{Deny: true, Message: msg, Score: sc}, nil
	}
	return RequestDecision{Score: sc}, nil
}
