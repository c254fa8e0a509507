package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/cputime"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// BenchmarkLongPollFanout holds MESHSESSION_BENCH_WAITERS (default 10,000)
// simulated proxies in a sync long-poll (wait=25s) on one sessionsvc
// replica and appends changes one at a time. Each waiter, once answered,
// polls again at its new cursor, as the plugin does. It reports the
// memory held per waiting request (heap and stacks of the handler and its
// goroutine; the requests run through the server's handler in process,
// without sockets, so a connection's kernel buffers and net/http's 8 KB
// of bufio per connection are not included), the process CPU per change
// fanned out to every waiter, and the time from the append to the last
// waiter answered (p50/p99).
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
			poll := func(cursor int64) (protocol.SyncPage, int) {
				req := httptest.NewRequest("GET", fmt.Sprintf("%s?epoch=%s&cursor=%d&wait=25s&format=json", protocol.PathSync, first.Epoch, cursor), nil)
				req.Header.Set(protocol.HeaderKey, testKey)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				var p protocol.SyncPage
				if rec.Code == 200 {
					_ = json.Unmarshal(rec.Body.Bytes(), &p)
				}
				return p, rec.Code
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
					for {
						p, code := poll(cursor)
						select {
						case <-stop:
							return
						default:
						}
						if code != 200 {
							b.Errorf("sync answered %d", code)
							return
						}
						if p.Cursor > cursor {
							cursor = p.Cursor
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

			changes := max(b.N, 20)
			lat := make([]time.Duration, 0, changes)
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
			p50, p99 := percentiles(lat)
			b.ReportMetric(float64(waiters), "waiters")
			b.ReportMetric(perWaiter/1024, "KiB/waiter")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(changes), "cpu-ms/change")
			b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(changes*waiters), "cpu-µs/waiter-answer")
			b.ReportMetric(p50, "fanout-p50-ms")
			b.ReportMetric(p99, "fanout-p99-ms")
		})
	}
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

var _ http.Handler = (*http.ServeMux)(nil)
