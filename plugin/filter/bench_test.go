package filter_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/internal/cputime"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// benchHost starts plugin.wasm on two workers with n revocations loaded
// through a one-page snapshot by worker 0, and reports how long that sync
// tick took, how long worker 1 took to adopt the published state, and
// worker 0's linear memory afterwards. Requests then run on worker 0.
func benchHost(b *testing.B, n int) (*host.Host, func()) {
	return benchHostPaged(b, n, 100000)
}

func benchHostPaged(b *testing.B, n, pageSize int) (*host.Host, func()) {
	b.Helper()
	module, cache := pluginWasm(b)
	stub := &stubSvc{epoch: "bench", calls: map[string]int{}}
	exp := time.Now().Add(time.Hour).Unix()
	for i := 0; i < n; i++ {
		stub.log = append(stub.log, protocol.Change{Seq: int64(i + 1), Op: protocol.OpRevoke,
			Key: "sid:revoked-" + strconv.Itoa(i), Exp: exp, Reason: protocol.ReasonManual})
	}
	srv := newStubServer(stub)
	cl := map[string]host.Cluster{"sessionsvc": {URL: srv.URL, Timeout: 30 * time.Second}}
	clk := &testClock{}
	h, err := host.New(context.Background(), host.Config{
		Module: module, Workers: 2, VMID: "meshsession", RootID: "meshsession", CompilationCache: cache,
		PluginConfig: []byte(testConfig(`"sync_page_size":` + strconv.Itoa(pageSize) + `,"timeout":"30s","last_seen_interval":"1h"`)),
		Clusters:     cl, DisableTicks: true, Now: clk.Now,
	})
	if err != nil {
		srv.Close()
		b.Fatal(err)
	}
	closeAll := func() {
		h.Close(context.Background())
		srv.Close()
	}
	before, _ := h.MemoryPages(0)
	start := time.Now()
	if err := h.Tick(0); err != nil {
		b.Fatal(err)
	}
	for h.PendingCallouts() > 0 {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	pages, _ := h.MemoryPages(0)
	// sync-ms is the whole tick: the stub building the pages, HTTP, the VM.
	// apply-ms is the VM's part: the pages applied and the state published.
	b.ReportMetric(float64(took.Milliseconds()), "sync-ms")
	b.ReportMetric(float64(h.CalloutCallbackTime().Microseconds())/1000, "apply-ms")
	b.ReportMetric(float64(h.CalloutCallbackCPU().Microseconds())/1000, "apply-cpu-ms")

	// The second worker adopts the published state on its tick.
	start = time.Now()
	if err := h.Tick(1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "adopt-ms")
	adopterPages, _ := h.MemoryPages(1)
	b.ReportMetric(float64(adopterPages)*64/1024, "MiB-memory-adopter")
	// One more revocation: worker 0 fetches and publishes the delta page,
	// worker 1 applies it (instead of reading the whole state again).
	stub.add(protocol.Change{Op: protocol.OpRevoke, Key: "sid:one-more", Exp: exp, Reason: protocol.ReasonManual})
	clk.advance(510 * time.Millisecond) // the lease's next-fetch time
	if err := h.Tick(0); err != nil {
		b.Fatal(err)
	}
	for h.PendingCallouts() > 0 {
		time.Sleep(time.Millisecond)
	}
	start = time.Now()
	if err := h.Tick(1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "adopt-delta-ms")
	b.ReportMetric(float64(pages-before)*64/1024, "MiB-grown")
	b.ReportMetric(float64(pages)*64/1024, "MiB-memory")
	// The stub's log (n changes, strings) stays out of the requests' figures:
	// it is this process's heap, which its collector would scan again and
	// again; a real proxy has no such heap beside its VMs.
	stub.set(func(s *stubSvc) { s.log = nil })
	runtime.GC()
	return h, closeAll
}

// BenchmarkLifecycleEnforced is one whole request on plugin.wasm: context
// create, request headers with a valid HS256 token checked against n
// revocations (and the last-seen throttle), response headers, log, done,
// delete. Target: <= 5 µs.
func BenchmarkLifecycleEnforced(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run("revocations="+strconv.Itoa(n), func(b *testing.B) {
			h, closeAll := benchHost(b, n)
			defer closeAll()
			req := [][2]string{{":method", "GET"}, {":path", "/api/articles"}, {":authority", "app"},
				{"authorization", "Bearer " + userToken(42, "live-session")}}
			runAccepted(b, h, req)
		})
	}
}

// BenchmarkLifecycleBrowser is BenchmarkLifecycleEnforced (100,000
// revocations) with the sixteen request headers a browser's API call
// through a load balancer carries: the filter reads six names among them.
func BenchmarkLifecycleBrowser(b *testing.B) {
	h, closeAll := benchHost(b, 100000)
	defer closeAll()
	runAccepted(b, h, [][2]string{{":method", "GET"}, {":path", "/api/articles?page=2"}, {":authority", "app.example.com"}, {":scheme", "https"},
		{"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
		{"accept", "application/json, text/plain, */*"}, {"accept-language", "en-US,en;q=0.9,de;q=0.8"},
		{"accept-encoding", "gzip, deflate, br, zstd"}, {"referer", "https://app.example.com/articles"},
		{"origin", "https://app.example.com"}, {"sec-fetch-mode", "cors"}, {"sec-fetch-site", "same-origin"},
		{"x-forwarded-for", "203.0.113.9"}, {"x-request-id", "5b0c6a7e-1f7e-4c53-9d0a-6a7b1b2f0c11"},
		{"x-forwarded-proto", "https"}, {"authorization", "Bearer " + userToken(42, "live-session")}})
}

// runAccepted times b.N whole requests with the request headers req on
// worker 0, each of which must be accepted, and reports the CPU time per
// request and worker 0's memory at the end.
func runAccepted(b *testing.B, h *host.Host, req [][2]string) {
	resp := [][2]string{{":status", "200"}, {"content-type", "application/json"}}
	defer measure(b)()
	for i := 0; i < b.N; i++ {
		s, err := h.NewStream(0)
		if err != nil {
			b.Fatal(err)
		}
		r, err := s.RequestHeaders(req, true)
		if err != nil || r.LocalResponse != nil {
			b.Fatalf("refused: %v %+v", err, r.LocalResponse)
		}
		if _, err := s.ResponseHeaders(resp, true); err != nil {
			b.Fatal(err)
		}
		if err := s.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	pages, _ := h.MemoryPages(0)
	b.ReportMetric(float64(pages)*64/1024, "MiB-memory-end")
}

// BenchmarkSnapshot measures a sync tick that fetches and applies a
// snapshot of n entries in the VM (in pages of the given size), the VM's
// memory holding it, a second worker adopting it, and a delta page after
// it. Target at n=100,000: apply-ms < 100, MiB-memory <= 16.
func BenchmarkSnapshot(b *testing.B) {
	for _, tc := range []struct{ n, page int }{{1000, 5000}, {10000, 5000}, {100000, 5000}, {100000, 100000}} {
		b.Run(fmt.Sprintf("n=%d/page=%d", tc.n, tc.page), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				_, closeAll := benchHostPaged(b, tc.n, tc.page)
				closeAll()
			}
		})
	}
}

// BenchmarkLifecycleNoToken: a request without a token (baseline of the
// filter's fixed cost: header read, identity header removal, decision).
func BenchmarkLifecycleNoToken(b *testing.B) {
	benchLifecycle(b, [][2]string{{":method", "GET"}, {":path", "/api/articles"}, {":authority", "app"}})
}

// BenchmarkLifecycleABIOnly: context create, response headers, log, done,
// delete: what every request costs before the filter does anything.
func BenchmarkLifecycleABIOnly(b *testing.B) { benchLifecycle(b, nil) }

// benchLifecycle runs one stream an iteration on worker 0: the request
// headers req (none when nil), response headers, finish.
func benchLifecycle(b *testing.B, req [][2]string) {
	h, closeAll := benchHost(b, 10)
	defer closeAll()
	resp := [][2]string{{":status", "200"}}
	defer measure(b)()
	for i := 0; i < b.N; i++ {
		s, _ := h.NewStream(0)
		if req != nil {
			s.RequestHeaders(req, true)
		}
		s.ResponseHeaders(resp, true)
		s.Finish()
	}
}

// measure starts b's measured loop: it resets the timer, reports
// allocations, and reports the process's CPU time per operation
// (cpu-ns/op) from now until the returned function runs: on a shared
// machine it is steadier than wall time.
func measure(b *testing.B) func() {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Now()
	return func() {
		if cpu := cputime.Now() - cpu0; cpu > 0 && b.N > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
