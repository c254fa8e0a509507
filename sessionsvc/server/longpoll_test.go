package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/cputime"
	"github.com/meshsession/meshsession/internal/latency"
	"github.com/meshsession/meshsession/internal/testenv"
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

// BenchmarkLongPollFanout holds MESHSESSION_BENCH_WAITERS (default 10,000)
// simulated proxies in a sync long-poll (wait=25s) on one sessionsvc
// replica and appends changes one at a time. Each waiter, once answered,
// polls again at its new cursor, as the plugin does. One iteration is one
// change fanned out: appended, answered to every waiter, and every waiter
// parked again (ns/op; B/op and allocs/op are what the process allocated
// for it). It reports the memory held per waiting request (heap and
// stacks of the handler and its goroutine; the requests run through the
// server's handler in process, without sockets, so a connection's kernel
// buffers and net/http's 8 KB of bufio per connection are not included),
// the process CPU per change fanned out to every waiter, and the time
// from the append to the last waiter answered (p50/p99). -benchtime=20x:
// 20 changes.
func BenchmarkLongPollFanout(b *testing.B) {
	waiters := testenv.PositiveInt("MESHSESSION_BENCH_WAITERS", 10_000)
	for _, be := range backends {
		b.Run(be, func(b *testing.B) {
			ctx := context.Background()
			st, _ := benchStore(b, be)
			require.Eventually(b, st.(interface{ LongPollReady() bool }).LongPollReady, 10*time.Second, time.Millisecond)
			e := newEnvWithStore(b, st)
			now := time.Now()
			require.NoError(b, st.RevokeKeys(ctx, []string{"fp:fanout-0"}, protocol.ReasonLogout, now.Add(time.Hour), now))
			first := e.syncPage("", 0, 0)
			h := e.srv.Handler()

			var mu sync.Mutex
			answered := 0
			round := make(chan struct{}) // closed when every waiter answered the current change
			// As the plugin asks (binary pages). A waiter builds its
			// request without parsing one, reuses its answer buffer and
			// reads only the answer's cursor: the CPU and memory measured
			// are sessionsvc's.
			poll := func(rec *pageRecorder, cursor int64) (int64, int) {
				url := protocol.PathSync + "?epoch=" + first.Epoch + "&cursor=" + strconv.FormatInt(cursor, 10) +
					"&wait=25s&format=" + protocol.FormatBinary
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					b.Errorf("sync request: %v", err)
					return 0, 0
				}
				req.RemoteAddr = "192.0.2.1:1234"
				req.Header.Set(protocol.HeaderKey, testKey)
				rec.reset()
				h.ServeHTTP(rec, req)
				if rec.code != http.StatusOK {
					return 0, rec.code
				}
				c, err := binaryPageCursor(rec.body)
				if err != nil {
					b.Errorf("sync answer: %v", err)
					return 0, 0
				}
				return c, http.StatusOK
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for i := 0; i < waiters; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cursor := first.Cursor
					rec := &pageRecorder{header: http.Header{}}
					for {
						next, code := poll(rec, cursor)
						select {
						case <-stop:
							return
						default:
						}
						if code != 200 {
							b.Errorf("sync answered %d", code)
							return
						}
						if next > cursor {
							cursor = next
							mu.Lock()
							answered++
							if answered == waiters {
								close(round)
							}
							mu.Unlock()
						}
					}
				}()
			}
			untilWaitingB(b, e, waiters)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			perWaiter := float64((m1.HeapInuse+m1.StackInuse)-(m0.HeapInuse+m0.StackInuse)) / float64(waiters)

			changes := b.N
			lat := make([]time.Duration, 0, changes)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 1; i <= changes; i++ {
				mu.Lock()
				answered = 0
				round = make(chan struct{})
				r := round
				mu.Unlock()
				now := time.Now()
				require.NoError(b, st.RevokeKeys(ctx, []string{"fp:fanout-" + strconv.Itoa(i)}, protocol.ReasonLogout, now.Add(time.Hour), now))
				t0 := time.Now()
				select {
				case <-r:
				case <-time.After(30 * time.Second):
					b.Fatalf("change %d: %d of %d waiters answered", i, answered, waiters)
				}
				lat = append(lat, time.Since(t0))
				untilWaitingB(b, e, waiters) // every waiter is parked again
			}
			cpu := cputime.Now() - cpu0
			b.StopTimer()
			close(stop)
			// Wake the parked waiters so they see stop.
			now = time.Now()
			require.NoError(b, st.RevokeKeys(ctx, []string{"fp:fanout-end"}, protocol.ReasonLogout, now.Add(time.Hour), now))
			wg.Wait()
			p50, p99 := latency.PercentilesMS(lat)
			b.ReportMetric(float64(waiters), "waiters")
			b.ReportMetric(perWaiter/1024, "KiB/waiter")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(changes), "cpu-ms/change")
			b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(changes*waiters), "cpu-µs/waiter-answer")
			b.ReportMetric(p50, "fanout-p50-ms")
			b.ReportMetric(p99, "fanout-p99-ms")
		})
	}
}

// pageRecorder is a reusable http.ResponseWriter that keeps the status
// and the body.
type pageRecorder struct {
	header http.Header
	code   int
	body   []byte
}

func (r *pageRecorder) reset() {
	clear(r.header)
	r.code, r.body = 0, r.body[:0]
}

func (r *pageRecorder) Header() http.Header { return r.header }

func (r *pageRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *pageRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, p...)
	return len(p), nil
}

// binaryPageCursor reads the cursor of a binary sync page (its layout:
// protocol/binary.go).
func binaryPageCursor(page []byte) (int64, error) {
	head := len(protocol.BinaryPageMagic) + 2 // magic, format, flags
	if len(page) < head || string(page[:len(protocol.BinaryPageMagic)]) != protocol.BinaryPageMagic {
		return 0, errors.New("not a binary sync page")
	}
	rest := page[head:]
	n, k := binary.Uvarint(rest) // the epoch's length
	if k <= 0 || uint64(len(rest)-k) < n {
		return 0, errors.New("binary sync page: bad epoch")
	}
	c, k2 := binary.Uvarint(rest[k+int(n):])
	if k2 <= 0 {
		return 0, errors.New("binary sync page: bad cursor")
	}
	return int64(c), nil
}

func untilWaitingB(b *testing.B, e *env, n int) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !e.srv.syncWaitingAtLeast(n) {
		if time.Now().After(deadline) {
			b.Fatalf("fewer than %d sync requests waiting", n)
		}
		time.Sleep(time.Millisecond)
	}
}

var _ http.ResponseWriter = (*pageRecorder)(nil)
