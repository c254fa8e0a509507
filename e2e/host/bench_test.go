package host_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/internal/cputime"
)

var benchRequest = reqHeaders(
	[2]string{"user-agent", "bench/1.0"},
	[2]string{"x-session-id", "forged"},
	[2]string{"accept", "*/*"},
)

var benchResponse = [][2]string{{":status", "200"}, {"content-type", "application/json"}}

// benchLifecycle runs one whole request (benchRequest, benchResponse) on
// worker (-1: round-robin).
func benchLifecycle(h *host.Host, worker int) error {
	s, err := h.NewStream(worker)
	if err != nil {
		return err
	}
	_, err = s.RequestHeaders(benchRequest, true)
	if err == nil {
		_, err = s.ResponseHeaders(benchResponse, true)
	}
	return errors.Join(err, s.Finish())
}

// BenchmarkPluginRequestLifecycle: one whole request on the real plugin.wasm
// (context create, request headers, response headers, log, done, delete).
// Reports µs/request and the worker's linear memory in pages at the end.
func BenchmarkPluginRequestLifecycle(b *testing.B) {
	h := newHost(b, host.Config{Module: pluginWasm(b), Workers: 1, DisableTicks: true})
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Now()
	for i := 0; i < b.N; i++ {
		if err := benchLifecycle(h, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "µs/request")
	b.ReportMetric(float64((cputime.Now()-cpu0).Nanoseconds())/float64(b.N)/1000, "cpu-µs/request")
	pages, err := h.MemoryPages(0)
	require.NoError(b, err)
	b.ReportMetric(float64(pages), "pages")
}

// BenchmarkPluginRequestLifecycleParallel: the same on 2 workers in parallel.
func BenchmarkPluginRequestLifecycleParallel(b *testing.B) {
	h := newHost(b, host.Config{Module: pluginWasm(b), Workers: 2, DisableTicks: true})
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := benchLifecycle(h, -1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "µs/request")
}

// BenchmarkPluginRequestHeaders: proxy_on_request_headers alone, on one
// stream context.
func BenchmarkPluginRequestHeaders(b *testing.B) {
	h := newHost(b, host.Config{Module: pluginWasm(b), Workers: 1, DisableTicks: true})
	s, err := h.NewStream(0)
	require.NoError(b, err)
	_, err = s.RequestHeaders(benchRequest, false)
	require.NoError(b, err)
	b.ReportAllocs()
	timeRequestHeaders(b, s, benchRequest, "µs/call")
	require.NoError(b, s.Finish())
}

// timeRequestHeaders runs s.RequestHeaders(hdrs) b.N times and reports the
// wall and CPU time of one call divided by 1,000, in unit and "cpu-"+unit:
// µs per call, or ns per host call when a call makes 1,000 of them.
func timeRequestHeaders(b *testing.B, s *host.Stream, hdrs [][2]string, unit string) {
	b.ResetTimer()
	cpu0 := cputime.Now()
	for i := 0; i < b.N; i++ {
		if _, err := s.RequestHeaders(hdrs, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, unit)
	b.ReportMetric(float64((cputime.Now()-cpu0).Nanoseconds())/float64(b.N)/1000, "cpu-"+unit)
}

// BenchmarkPluginMemory runs b.N whole requests after a 1,000-request warm
// up and reports the worker's linear memory before and after: it stays flat
// when the host forwards proxy_on_delete. Run it with -benchtime=100000x for
// the 100k-request figure.
func BenchmarkPluginMemory(b *testing.B) {
	h := newHost(b, host.Config{Module: pluginWasm(b), Workers: 1, DisableTicks: true})
	run := func(n int) {
		for i := 0; i < n; i++ {
			if err := benchLifecycle(h, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	run(1000)
	start, err := h.MemoryPages(0)
	require.NoError(b, err)
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	end, err := h.MemoryPages(0)
	require.NoError(b, err)
	b.ReportMetric(float64(start), "pages-start")
	b.ReportMetric(float64(end), "pages-end")
}

// BenchmarkHostCall measures the host's own cost per host call, without the
// plugin's work: the test guest makes 1,000 calls per request, either
// without (proxy_get_shared_data on a missing key) or with a guest
// allocation (proxy_get_header_map_value).
func BenchmarkHostCall(b *testing.B) {
	h := newHost(b, host.Config{Module: guestWasm(b), Workers: 1, DisableTicks: true})
	for _, cmd := range []string{"loop", "allocloop"} {
		b.Run(cmd, func(b *testing.B) {
			s, err := h.NewStream(0)
			require.NoError(b, err)
			defer func() { require.NoError(b, s.Finish()) }()
			timeRequestHeaders(b, s, reqHeaders([2]string{"x-cmd", cmd + ":1000"}), "ns/hostcall")
		})
	}
}
