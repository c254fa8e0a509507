package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// hub polls the database for sessions that started or ended and fans the
// changes out to the open event streams. It polls only while someone
// listens, once per process whatever the number of listeners, and sees
// changes made by every replica (it reads the shared database).
type hub struct {
	d      *Dashboard
	mu     sync.Mutex
	subs   map[chan []change]struct{}
	cancel context.CancelFunc
}

func newHub(d *Dashboard) *hub { return &hub{d: d, subs: map[chan []change]struct{}{}} }

func (h *hub) subscribe() chan []change {
	ch := make(chan []change, 16)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[ch] = struct{}{}
	if h.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		go h.run(ctx)
	}
	return ch
}

func (h *hub) unsubscribe(ch chan []change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
	if len(h.subs) == 0 && h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
}

func (h *hub) publish(cs []change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- cs:
		default: // a slow listener misses events; it reloads on the next one
		}
	}
}

// lateWindow re-reads this far back: a session's login or logout time is
// set before its transaction commits, so rows can appear out of order.
const lateWindow = 5 * time.Second

func (h *hub) run(ctx context.Context) {
	d := h.d
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	m := newLiveMarks(d.now().UnixMilli())
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if fresh := d.pollOnce(ctx, m); len(fresh) > 0 {
			h.publish(fresh)
		}
	}
}

// liveMarks is what the live-event poll has reported: the latest start and
// end it saw, and the changes it reported that a poll can still return.
type liveMarks struct {
	start, end int64             // Unix ms
	seen       map[string]change // "type:id" -> the change reported
}

func newLiveMarks(mark int64) *liveMarks {
	return &liveMarks{start: mark, end: mark, seen: map[string]change{}}
}

// since is the time after which a poll reads changes of type typ: its mark
// less lateWindow.
func (m *liveMarks) since(typ string) int64 {
	if typ == "started" {
		return m.start - lateWindow.Milliseconds()
	}
	return m.end - lateWindow.Milliseconds()
}

// pollOnce reads the changes since the marks and returns those not
// reported before. A change is remembered while the re-read window can
// still return it (its time is after its mark less lateWindow), so each
// goes out once however long no newer change moves the mark.
func (d *Dashboard) pollOnce(ctx context.Context, m *liveMarks) []change {
	cs, err := d.poll(ctx, m.since("started"), m.since("ended"))
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dashboard: polling for live events failed", "err", err)
		}
		return nil
	}
	var fresh []change
	for _, c := range cs {
		k := c.Type + ":" + c.ID
		if _, ok := m.seen[k]; ok {
			continue
		}
		m.seen[k] = c
		fresh = append(fresh, c)
		if c.Type == "started" && c.At > m.start {
			m.start = c.At
		}
		if c.Type == "ended" && c.At > m.end {
			m.end = c.At
		}
	}
	for k, c := range m.seen {
		if c.At <= m.since(c.Type) { // poll reads after since: never returned again
			delete(m.seen, k)
		}
	}
	return fresh
}

// poll returns sessions started after startSince and ended after endSince (Unix ms).
func (d *Dashboard) poll(ctx context.Context, startSince, endSince int64) ([]change, error) {
	if d.stats != nil {
		a, err := d.stats.started(ctx, startSince)
		if err != nil {
			return nil, err
		}
		b, err := d.stats.ended(ctx, endSince)
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	}
	// Without SQL access: the newest sessions by login and by logout time.
	var out []change
	p, err := d.st.ListSessions(ctx, store.SessionQuery{Sort: "loginTime", Desc: true, Limit: 50})
	if err != nil {
		return nil, err
	}
	for _, s := range p.Sessions {
		if t := s.LoginTime.UnixMilli(); t > startSince {
			out = append(out, change{Type: "started", ID: s.ID, UserID: s.UserID, At: t})
		}
	}
	p, err = d.st.ListSessions(ctx, store.SessionQuery{Sort: "logoutTime", Desc: true, Limit: 50, Status: store.StatusTerminated})
	if err != nil {
		return nil, err
	}
	q, err := d.st.ListSessions(ctx, store.SessionQuery{Sort: "logoutTime", Desc: true, Limit: 50, Status: store.StatusLoggedOut})
	if err != nil {
		return nil, err
	}
	for _, s := range append(p.Sessions, q.Sessions...) {
		if s.LogoutTime != nil && s.LogoutTime.UnixMilli() > endSince {
			out = append(out, change{Type: "ended", ID: s.ID, UserID: s.UserID, Reason: s.TerminationReason, At: s.LogoutTime.UnixMilli()})
		}
	}
	return out, nil
}

// SSE timing.
const (
	ssePing     = 15 * time.Second
	sseRecheck  = 30 * time.Second
	sseLifetime = 30 * time.Minute // the browser reconnects (EventSource) after this
)

// events is a Server-Sent Events stream of sessions starting and ending.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, s *session) {
	stopping := d.shutdownSignal(r) // before the first byte: a client that saw it can rely on it
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ch := d.hub.subscribe()
	defer d.hub.unsubscribe(ch)
	write := func(format string, args ...any) error {
		_ = rc.SetWriteDeadline(time.Now().Add(ssePing + 10*time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write("retry: 2000\nevent: hello\ndata: {}\n\n"); err != nil {
		return
	}
	ctx := r.Context()
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	recheck := time.NewTicker(sseRecheck)
	defer recheck.Stop()
	end := time.NewTimer(sseLifetime)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-stopping:
			return // let a graceful shutdown drain; the browser reconnects elsewhere
		case <-ping.C:
			if write(": ping\n\n") != nil {
				return
			}
		case <-recheck.C:
			// A revoked admin token or an expired sign-in ends the stream.
			now := d.now()
			_, err := d.st.FindAdminToken(ctx, server.HashAdminToken(s.Token), now.UTC())
			if errors.Is(err, store.ErrNotFound) || now.Unix() >= s.Expires {
				_ = write("event: signedout\ndata: {}\n\n")
				return
			}
		case cs := <-ch:
			b, _ := json.Marshal(cs)
			if write("event: sessions\ndata: %s\n\n", b) != nil {
				return
			}
		}
	}
}

// shutdownSignal is closed when the http.Server serving r shuts down, so
// open event streams end and do not hold up the graceful drain (Shutdown
// does not cancel request contexts). One hook per server.
func (d *Dashboard) shutdownSignal(r *http.Request) <-chan struct{} {
	hs, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil
	}
	d.shutMu.Lock()
	defer d.shutMu.Unlock()
	if d.shut == nil {
		d.shut = map[*http.Server]chan struct{}{}
	}
	ch, ok := d.shut[hs]
	if !ok {
		ch = make(chan struct{})
		d.shut[hs] = ch
		hs.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}
