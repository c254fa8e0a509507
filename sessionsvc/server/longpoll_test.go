package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestParseWait(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"25", 25 * time.Second, false}, {"0.5", 500 * time.Millisecond, false},
		{"25s", 25 * time.Second, false}, {"500ms", 500 * time.Millisecond, false}, {"90", MaxSyncWait, false},
		{"1h", MaxSyncWait, false}, {"-1", 0, true}, {"-1s", 0, true}, {"NaN", 0, true}, {"Inf", 0, true},
		{"1e3", 0, true}, {"soon", 0, true}, {"99999999999", 0, true}, {"25sss", 0, true},
	} {
		got, err := parseWait(tc.in)
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// longPoll runs GET sync with wait= in the background.
func longPoll(e *env, epoch string, cursor int64, wait string) <-chan protocol.SyncPage {
	out := make(chan protocol.SyncPage, 1)
	go func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s?epoch=%s&cursor=%d&wait=%s", e.http.URL, protocol.PathSync, epoch, cursor, wait), nil)
		req.Header.Set(protocol.HeaderKey, testKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			close(out)
			return
		}
		defer res.Body.Close()
		var p protocol.SyncPage
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&p) != nil {
			close(out)
			return
		}
		out <- p
	}()
	return out
}

// untilWaiting waits until n sync requests are parked in a long-poll.
func untilWaiting(t *testing.T, e *env, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var m dto.Metric
		return e.srv.metrics.syncWaiting.Write(&m) == nil && m.GetGauge().GetValue() == float64(n)
	},
		10*time.Second, time.Millisecond, "long-poll requests waiting")
}

func TestSyncLongPoll(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			open := func() *env {
				st, err := store.Open(context.Background(), u, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = st.Close() })
				// PostgreSQL: the listener connects in the background; until
				// then requests answer at once (tested below for SQLite,
				// which is ready at once).
				require.Eventually(t, st.(interface{ LongPollReady() bool }).LongPollReady, 10*time.Second, time.Millisecond)
				return newEnvWithStore(t, st)
			}
			e := open()
			first := e.syncPage("", 0, 0)
			require.True(t, first.Reset)

			// Nothing happens: the wait ends empty at its bound.
			start := time.Now()
			p, ok := <-longPoll(e, first.Epoch, first.Cursor, "300ms")
			require.True(t, ok)
			assert.Empty(t, p.Changes)
			assert.Equal(t, first.Cursor, p.Cursor)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

			// A revocation wakes the waiter, which answers with it at once.
			ch := longPoll(e, first.Epoch, first.Cursor, "20")
			untilWaiting(t, e, 1)
			t0 := time.Now()
			r := e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"fp:longpoll-1"}})
			require.Equal(t, 200, r.status, string(r.raw))
			select {
			case p, ok = <-ch:
				require.True(t, ok)
			case <-time.After(15 * time.Second):
				t.Fatal("the long-poll did not answer after a revocation")
			}
			require.Len(t, p.Changes, 1)
			assert.Equal(t, "fp:longpoll-1", p.Changes[0].Key)
			assert.Greater(t, p.Cursor, first.Cursor)
			t.Logf("woken %v after the revoke returned", time.Since(t0))

			// A wait at an old cursor answers at once.
			p, ok = <-longPoll(e, first.Epoch, first.Cursor, "20")
			require.True(t, ok)
			require.Len(t, p.Changes, 1)

			if b.Name != "postgres" {
				return
			}
			// Another replica's append wakes this replica's waiters (NOTIFY).
			other, err := store.Open(context.Background(), u, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = other.Close() })
			ch = longPoll(e, p.Epoch, p.Cursor, "20")
			untilWaiting(t, e, 1)
			now := time.Now()
			require.NoError(t, other.RevokeKeys(context.Background(), []string{"fp:longpoll-2"}, protocol.ReasonLogout, now.Add(time.Hour), now))
			select {
			case p2, ok := <-ch:
				require.True(t, ok)
				require.Len(t, p2.Changes, 1)
				assert.Equal(t, "fp:longpoll-2", p2.Changes[0].Key)
			case <-time.After(15 * time.Second):
				t.Fatal("the long-poll did not answer after another replica's revocation")
			}
		})
	}
}

// rawAnswer is a sync answer as sent: content type and body.
type rawAnswer struct {
	contentType string
	body        []byte
}

// rawLongPoll runs GET sync with wait= in the background and keeps the
// answer's bytes.
func rawLongPoll(e *env, epoch string, cursor int64, format string) <-chan rawAnswer {
	out := make(chan rawAnswer, 1)
	go func() {
		defer close(out)
		u := fmt.Sprintf("%s%s?epoch=%s&cursor=%d&wait=20&format=%s", e.http.URL, protocol.PathSync, epoch, cursor, format)
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set(protocol.HeaderKey, testKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != 200 {
			return
		}
		out <- rawAnswer{res.Header.Get("Content-Type"), b}
	}()
	return out
}

func receive(t *testing.T, ch <-chan rawAnswer) rawAnswer {
	t.Helper()
	select {
	case a, ok := <-ch:
		require.True(t, ok, "the long-poll failed")
		return a
	case <-time.After(15 * time.Second):
		t.Fatal("the long-poll did not answer")
	}
	return rawAnswer{}
}

// encoded is page as the sync call sends it in format.
func encoded(t *testing.T, page protocol.SyncPage, format string) rawAnswer {
	t.Helper()
	if format == protocol.FormatBinary {
		b, err := protocol.AppendBinaryPage(nil, &page)
		require.NoError(t, err)
		return rawAnswer{protocol.ContentTypeBinaryPage, b}
	}
	return rawAnswer{"application/json; charset=utf-8", appendSyncPage(nil, &page)}
}

// TestSyncLongPollSharedAnswer: the waiters one change wakes at one cursor
// get the same bytes, those of the page a plain sync call gives; a waiter
// at an older cursor, and an answer at a later second, get their own.
func TestSyncLongPollSharedAnswer(t *testing.T) {
	formats := []string{protocol.FormatBinary, "json"}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(context.Background(), b.URL(t), nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			require.Eventually(t, st.(interface{ LongPollReady() bool }).LongPollReady, 10*time.Second, time.Millisecond)
			e := newEnvWithStore(t, st)
			revoke := func(key string) {
				t.Helper()
				r := e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{key}})
				require.Equal(t, 200, r.status, string(r.raw))
			}
			first := e.syncPage("", 0, 0)
			revoke("fp:shared-0")
			c0 := e.syncPage(first.Epoch, first.Cursor, 0).Cursor
			revoke("fp:shared-1")
			c1 := e.syncPage(first.Epoch, c0, 0).Cursor

			var waiting [][2]<-chan rawAnswer
			for _, f := range formats {
				waiting = append(waiting, [2]<-chan rawAnswer{rawLongPoll(e, first.Epoch, c1, f), rawLongPoll(e, first.Epoch, c1, f)})
			}
			untilWaiting(t, e, 2*len(formats))
			revoke("fp:shared-2")
			want := e.syncPage(first.Epoch, c1, 0)
			require.Len(t, want.Changes, 1)
			require.Equal(t, "fp:shared-2", want.Changes[0].Key)
			for i, f := range formats {
				a, b := receive(t, waiting[i][0]), receive(t, waiting[i][1])
				assert.Equal(t, a, b, "%s: two waiters at one cursor", f)
				assert.Equal(t, encoded(t, want, f), a, "%s: the page at the cursor", f)
			}

			// An older cursor (answered at once), then a later second.
			old := e.syncPage(first.Epoch, c0, 0)
			require.Len(t, old.Changes, 2)
			for _, f := range formats {
				assert.Equal(t, encoded(t, old, f), receive(t, rawLongPoll(e, first.Epoch, c0, f)), "%s: older cursor", f)
			}
			e.clock.Add(2 * time.Second)
			later := e.syncPage(first.Epoch, c1, 0)
			require.Equal(t, want.Now+2, later.Now)
			for _, f := range formats {
				assert.Equal(t, encoded(t, later, f), receive(t, rawLongPoll(e, first.Epoch, c1, f)), "%s: later second", f)
			}
		})
	}
}

// TestSyncBodyReused: a page handed out again (the store shares one page
// among the waiters at a cursor) is encoded once; any other page, even
// with equal content, gets its own bytes; snapshots are not kept.
func TestSyncBodyReused(t *testing.T) {
	s := &Server{}
	changes := []protocol.Change{{Seq: 7, Op: protocol.OpRevoke, Key: "fp:x", Exp: 100, Reason: protocol.ReasonLogout}}
	page := protocol.SyncPage{Epoch: "e", Cursor: 7, Now: 50, Changes: changes}
	for _, binaryForm := range []bool{true, false} {
		first, err := s.syncBody(&page, binaryForm)
		require.NoError(t, err)
		again, err := s.syncBody(&page, binaryForm)
		require.NoError(t, err)
		assert.Same(t, &first[0], &again[0], "encoded once")

		copied := page
		copied.Changes = append([]protocol.Change(nil), changes...)
		other, err := s.syncBody(&copied, binaryForm)
		require.NoError(t, err)
		assert.NotSame(t, &first[0], &other[0])
		assert.Equal(t, first, other)

		later := page
		later.Now++
		b, err := s.syncBody(&later, binaryForm)
		require.NoError(t, err)
		assert.NotEqual(t, first, b, "now is in the answer")

		snap := page
		snap.Reset = true
		s1, err := s.syncBody(&snap, binaryForm)
		require.NoError(t, err)
		s2, err := s.syncBody(&snap, binaryForm)
		require.NoError(t, err)
		assert.NotSame(t, &s1[0], &s2[0], "snapshots are not kept")
	}
}

// TestParseSyncQuery: the sync call's parameters read as url.Values.Get
// reads them.
func TestParseSyncQuery(t *testing.T) {
	for _, raw := range []string{
		"", "epoch=e&cursor=5&limit=10&wait=25s&format=bin",
		"cursor=1&cursor=2", "cursor=%zz&cursor=3", "cur%73or=4&wait=2%35s", "epoch=a+b%20c",
		"cursor=1;x=2&cursor=9", "&&cursor&=&format=json&", "wait=%", "epoch==x",
		"x=1&x=2&x=3&x=4&x=5&x=6&x=7&x=8&x=9&x=10&x=11&x=12&x=13&x=14&x=15&x=16&x=17&x=18&x=19&x=20&x=21&x=22&x=23&x=24&x=25&x=26&x=27&x=28&x=29&x=30&x=31&x=32&x=33&cursor=%zz&cursor=8",
	} {
		q, _ := url.ParseQuery(raw)
		want := syncParams{epoch: q.Get("epoch"), cursor: q.Get("cursor"), limit: q.Get("limit"), wait: q.Get("wait"), format: q.Get("format")}
		assert.Equal(t, want, parseSyncQuery(raw), raw)
	}
}
