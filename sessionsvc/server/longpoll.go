package server

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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
	if f, ok := parseSeconds(v); ok {
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

// parseSeconds reads a plain number of seconds (no exponent, inf or nan).
// A value ending in a letter, such as "25s", is none: it skips ParseFloat
// and the error it would allocate.
func parseSeconds(v string) (float64, bool) {
	if last := v[len(v)-1] | 0x20; last >= 'a' && last <= 'z' || strings.ContainsAny(v, "eEnNiI") {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
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
		return w.WaitChanges(ctx, epoch, cursor, limit, wait, s.nowUTCFunc)
	}
	return s.st.Changes(ctx, epoch, cursor, limit, s.nowUTC())
}

// syncWaitingAtLeast reports whether at least n sync requests are waiting.
func (s *Server) syncWaitingAtLeast(n int) bool { return s.waiting.Load() >= int64(n) }

// syncParams are the sync call's query parameters.
type syncParams struct {
	epoch, cursor, limit, wait, format string
}

// maxFastQueryParams bounds the queries parseSyncQuery reads itself; a
// longer one goes through url.ParseQuery (and its parameter limit).
const maxFastQueryParams = 32

// parseSyncQuery reads the sync call's parameters as url.Values.Get does
// (the first value of each; a pair with a semicolon or a bad escape is
// skipped) without building the map: every long-poll answer asks again.
func parseSyncQuery(raw string) syncParams {
	var p syncParams
	if strings.Count(raw, "&") >= maxFastQueryParams {
		q, _ := url.ParseQuery(raw)
		return syncParams{epoch: q.Get("epoch"), cursor: q.Get("cursor"), limit: q.Get("limit"), wait: q.Get("wait"), format: q.Get("format")}
	}
	var seen [5]bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := queryUnescape(k)
		if err != nil {
			continue
		}
		var i int
		var dst *string
		switch k {
		case "epoch":
			i, dst = 0, &p.epoch
		case "cursor":
			i, dst = 1, &p.cursor
		case "limit":
			i, dst = 2, &p.limit
		case "wait":
			i, dst = 3, &p.wait
		case "format":
			i, dst = 4, &p.format
		default:
			continue
		}
		if seen[i] {
			continue
		}
		if v, err = queryUnescape(v); err != nil {
			continue
		}
		*dst, seen[i] = v, true
	}
	return p
}

func queryUnescape(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// encodedPage is a sync page's answer body, kept so that the waiters one
// change wakes at one cursor (who get the same shared page from the
// store) are answered with the same bytes, encoded once.
type encodedPage struct {
	page protocol.SyncPage
	body []byte
}

// encodedPages keeps the last few answers of one format (while a change
// fans out, answers at the old cursor and at the new second interleave).
type encodedPages struct {
	slots [4]atomic.Pointer[encodedPage]
	next  atomic.Uint32
}

// samePage tells whether a and b encode to the same bytes: equal fields
// and the very same changes (the store never modifies a page's changes
// once handed out, and the cached page keeps them from being reused).
func samePage(a, b *protocol.SyncPage) bool {
	return a.Epoch == b.Epoch && a.Cursor == b.Cursor && a.More == b.More && a.Reset == b.Reset &&
		a.Now == b.Now && a.Total == b.Total && len(a.Changes) == len(b.Changes) &&
		(len(a.Changes) == 0 || &a.Changes[0] == &b.Changes[0])
}

// Pre-built header values: setting them allocates nothing per answer.
var (
	binaryPageContentType = []string{protocol.ContentTypeBinaryPage}
	jsonContentType       = []string{"application/json; charset=utf-8"}
)

// syncBody encodes page in the binary form or as JSON, reusing the last
// answer's bytes when page is the same page. Snapshots (reset pages,
// fresh and up to 100,000 changes each) are not kept.
func (s *Server) syncBody(page *protocol.SyncPage, binaryForm bool) ([]byte, error) {
	c := &s.syncJSON
	if binaryForm {
		c = &s.syncBinary
	}
	for i := range c.slots {
		if e := c.slots[i].Load(); e != nil && samePage(&e.page, page) {
			return e.body, nil
		}
	}
	var b []byte
	if binaryForm {
		var err error
		if b, err = protocol.AppendBinaryPage(make([]byte, 0, 64+len(page.Changes)*24), page); err != nil {
			return nil, err
		}
	} else {
		b = appendSyncPage(make([]byte, 0, 64+len(page.Changes)*96), page)
	}
	if !page.Reset {
		c.slots[c.next.Add(1)%uint32(len(c.slots))].Store(&encodedPage{page: *page, body: b})
	}
	return b, nil
}
