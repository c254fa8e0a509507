package filter

import (
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/throttle"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// noteActivity records that a request of the session passed. A session's
// activity is reported at most once per last_seen_interval across all
// workers: this worker's own cache first (no host call), then the shared
// mark, claimed with a CAS write so that only one worker reports it. The
// report describes the token (its keys, user agent, expiry) so that
// sessionsvc registers a session it does not know (session discovery);
// authorization and cookie are the request's headers (views, valid during
// the callback).
func (p *pluginContext) noteActivity(t time.Time, d *decide.Decision, h *httpContext, authorization, cookie string) {
	if d.SessionKey == "" {
		return
	}
	nowMs := t.UnixMilli()
	interval := p.cfg.LastSeenInterval
	slot := &p.seen[d.SessionHash&(seenSlots-1)]
	if slot.hash == d.SessionHash && slot.at != 0 && !throttle.Due(slot.at, nowMs, interval) {
		return
	}
	if last, ok := p.lastSeen[d.SessionHash]; ok && !throttle.Due(last, nowMs, interval) {
		slot.hash, slot.at = d.SessionHash, last
		return
	}
	key := throttle.MarkKey(d.SessionKey)
	val, cas, err := proxywasm.GetSharedData(key)
	if err == nil {
		if last, ok, _ := throttle.DecodeMark(val); ok && !throttle.Due(last, nowMs, interval) {
			p.lastSeen[d.SessionHash] = last
			slot.hash, slot.at = d.SessionHash, last
			return
		}
	} else {
		cas = 0 // NotFound: first mark of this session
	}
	var buf [throttle.MarkLen]byte
	if err := proxywasm.SetSharedData(key, throttle.EncodeMark(&buf, nowMs), cas); err != nil {
		return // another worker claimed it (CAS mismatch): it reports
	}
	sk := strings.Clone(d.SessionKey)
	p.lastSeen[d.SessionHash] = nowMs
	slot.hash, slot.at = d.SessionHash, nowMs
	p.marks.Wrote(sk, nowMs)
	a := protocol.Activity{Key: sk, User: strings.Clone(d.UserID), At: nowMs, IP: h.clientIP(),
		Keys: p.discoveryKeys(sk, authorization, cookie), UserAgent: header("user-agent"), Exp: d.ExpiresAt}
	if !p.activity.Add(a) {
		p.flushActivity(t)
		p.activity.Add(a)
	}
}

// discoveryKeys returns the token's keys, the session key first: the
// fingerprint too when the session key is a sid: (so that a discovered
// session is found by either). Only when a mark is due (once per session
// per last_seen_interval).
func (p *pluginContext) discoveryKeys(sessionKey, authorization, cookie string) []string {
	keys := []string{sessionKey}
	if !strings.HasPrefix(sessionKey, protocol.PrefixSession) {
		return keys
	}
	tok, _, err := token.Extract(authorization, cookie, p.cfg.TokenCookie)
	if err != nil || tok == "" {
		return keys
	}
	return append(keys, token.FingerprintKey(tok))
}

// activityBatch is a batch's body and its number of marks.
type activityBatch struct {
	body []byte
	n    int
}

// maxActivityRetry bounds the batches kept for resending while sessionsvc
// cannot take them (each holds at most throttle.DefaultBatchMax marks, about 100 KB).
const maxActivityRetry = 16

// flushActivity sends one batch (one call per tick at most): a batch kept
// from a failed call first, else the marks gathered since the last one. A
// batch sessionsvc could not take (unreachable, 5xx, 429) is kept and
// resent, so that activity during an outage is not lost and its sessions
// are not ended as idle once sessionsvc is back; one it refused (another
// 4xx) is dropped.
func (p *pluginContext) flushActivity(t time.Time) {
	if p.activityInFlight {
		return
	}
	var b activityBatch
	resend := len(p.activityRetry) > 0
	switch {
	case resend:
		b = p.activityRetry[0]
	case p.activity.Len() > 0:
		b.n = p.activity.Len()
		b.body = p.activity.Flush()
	default:
		return
	}
	p.activityInFlight = true
	err := p.callout("POST", protocol.PathActivity, b.body, func(status int, resp []byte, err error) {
		p.activityInFlight = false
		if err == nil && status/100 == 2 {
			if resend {
				p.activityRetry = p.activityRetry[1:]
			}
			p.metrics.activityBatches.Increment(1)
			p.metrics.activityMarks.Increment(uint64(b.n))
			return
		}
		p.metrics.activityFailure.Increment(1)
		retry := err != nil || status >= 500 || status == 429 || status == 0
		proxywasm.LogWarnf("meshsession: activity batch of %d not accepted (status %d, %v, kept to resend: %v): %s", b.n, status, err, retry, snippet(resp))
		switch {
		case retry && !resend:
			p.keepActivity(b)
		case !retry && resend:
			p.activityRetry = p.activityRetry[1:]
		}
	})
	if err != nil {
		p.activityInFlight = false
		p.metrics.activityFailure.Increment(1)
		proxywasm.LogWarnf("meshsession: dispatch activity batch: %v", err)
		if !resend {
			p.keepActivity(b)
		}
	}
}

// keepActivity keeps b to resend, dropping the oldest kept batch past
// maxActivityRetry.
func (p *pluginContext) keepActivity(b activityBatch) {
	if len(p.activityRetry) >= maxActivityRetry {
		proxywasm.LogWarnf("meshsession: %d activity batches kept for sessionsvc; dropping the oldest (%d marks)", len(p.activityRetry), p.activityRetry[0].n)
		p.activityRetry = p.activityRetry[1:]
	}
	p.activityRetry = append(p.activityRetry, b)
}

// housekeeping drops expired revocations and stale throttle marks.
func (p *pluginContext) housekeeping(t time.Time) {
	p.sync.state.Prune(t)
	nowMs := t.UnixMilli()
	maxAge := 2 * p.cfg.LastSeenInterval
	for k, at := range p.lastSeen {
		if nowMs-at > maxAge.Milliseconds() {
			delete(p.lastSeen, k)
		}
	}
	// Blank the shared marks this worker wrote that nobody refreshed since
	// (proxy-wasm shared data has no delete: an empty value is "absent").
	for _, sk := range p.marks.Prune(nowMs, maxAge) {
		key := throttle.MarkKey(sk)
		val, cas, err := proxywasm.GetSharedData(key)
		if err != nil {
			continue
		}
		if last, ok, _ := throttle.DecodeMark(val); ok && nowMs-last > maxAge.Milliseconds() {
			_ = proxywasm.SetSharedData(key, nil, cas)
		}
	}
}
