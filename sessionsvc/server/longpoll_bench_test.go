package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/cputime"
	"github.com/meshsession/meshsession/internal/latency"
	"github.com/meshsession/meshsession/plugin/protocol"
)

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
	waiters := 10_000
	if v, err := strconv.Atoi(os.Getenv("MESHSESSION_BENCH_WAITERS")); err == nil && v > 0 {
		waiters = v
	}
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
