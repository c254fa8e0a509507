package e2etest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/latency"
	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// BenchmarkHeadline runs, side by side in one system, the filter against
// what users would otherwise deploy: an external check per request, as
// Envoy's ext_authz does (one HTTP call to sessionsvc that verifies the
// token and looks its session up: GET /api/magic-sessionmanager/current-session),
// with MESHSESSION_BENCH_SESSIONS sessions in the store (default 100,000,
// seeded with store.Seed), on SQLite and PostgreSQL. Three paths to the
// demo app's GET /api/articles with a valid token:
//
//   - proxy: a Go reverse proxy, no check (what a proxy alone costs);
//   - ext-check: the same proxy calling sessionsvc before forwarding;
//   - filter: the dev proxy hosting plugin.wasm (4 workers), as shipped.
//
// For each: p50/p99 latency of sequential requests, and throughput with 8
// concurrent clients for 3 s; then the ratios ext-check/filter.
func BenchmarkHeadline(b *testing.B) {
	n := testenv.PositiveInt("MESHSESSION_BENCH_SESSIONS", 100_000)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			sys := startSystem(b, be.url(b), nil)
			t0 := time.Now()
			require.NoError(b, store.Seed(context.Background(), sys.svc.Store, store.SeedOptions{N: n}, nil))
			b.Logf("%s: seeded %d sessions in %v", be.name, n, time.Since(t0).Round(time.Millisecond))
			// The check calls the user API, which sessionsvc rate-limits per
			// user (Strapi's floors): raise the read limit to its ceiling
			// (10,000 per 10 s) and spread the concurrent clients over three
			// users, so the external check measures its cost, not the limiter.
			r := sys.adminJSON(b, "PUT", "/magic-sessionmanager/settings", `{"rateLimitReadMax":10000,"rateLimitWindowSeconds":10}`)
			require.Equal(b, http.StatusOK, r.status, "settings: %s", r)
			d := newDevice(b, "127.0.0.4", uaLaptop)
			var toks []string
			for _, u := range []string{"alice", "bob", "carol"} {
				tok := sys.login(b, d, u)
				sys.currentSession(b, d, tok.jwt)
				toks = append(toks, tok.jwt)
			}

			app, err := url.Parse(sys.app.URL)
			require.NoError(b, err)
			plain := httptest.NewServer(httputil.NewSingleHostReverseProxy(app))
			b.Cleanup(plain.Close)
			checkURL := "http://" + sys.svcAddr + "/api/magic-sessionmanager/current-session"
			checkClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Second}
			fwd := httputil.NewSingleHostReverseProxy(app)
			ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// ext_authz: ask the authorisation service, then forward or refuse.
				cr, _ := http.NewRequestWithContext(r.Context(), "GET", checkURL, nil)
				cr.Header.Set("Authorization", r.Header.Get("Authorization"))
				res, err := checkClient.Do(cr)
				if err != nil {
					http.Error(w, "check failed", http.StatusServiceUnavailable)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK { // refused (or limited): its status
					http.Error(w, "refused by the check", res.StatusCode)
					return
				}
				fwd.ServeHTTP(w, r)
			}))
			b.Cleanup(ext.Close)

			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
			get := func(base, tok string) error {
				r, _ := http.NewRequest("GET", base+"/api/articles", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				res, err := client.Do(r)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					return &statusErr{res.StatusCode}
				}
				return nil
			}
			type result struct{ p50, p99, rps float64 }
			run := func(base string) result {
				for i := 0; i < 50; i++ { // warm up
					require.NoError(b, get(base, toks[0]))
				}
				lat := make([]time.Duration, 0, 2000)
				for i := 0; i < 2000; i++ {
					t := time.Now()
					require.NoError(b, get(base, toks[0]))
					lat = append(lat, time.Since(t))
				}
				p50, p99 := latency.PercentilesMS(lat)
				var done, failed atomic.Int64
				var wg sync.WaitGroup
				stop := time.Now().Add(3 * time.Second)
				for c := 0; c < 8; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Now().Before(stop) {
							if get(base, toks[c%len(toks)]) == nil {
								done.Add(1)
							} else {
								failed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				require.Zero(b, failed.Load(), "%s: requests refused under load", base)
				return result{p50, p99, float64(done.Load()) / 3}
			}
			b.ResetTimer()
			res := map[string]result{}
			for _, p := range []struct{ name, base string }{{"proxy", plain.URL}, {"ext-check", ext.URL}, {"filter", sys.proxyURL}} {
				r := run(p.base)
				res[p.name] = r
				b.ReportMetric(r.p50*1000, p.name+"-p50-µs")
				b.ReportMetric(r.p99*1000, p.name+"-p99-µs")
				b.ReportMetric(r.rps, p.name+"-req/s")
			}
			b.StopTimer()
			b.ReportMetric(res["ext-check"].p50/res["filter"].p50, "latency-ext/filter")
			b.ReportMetric(res["filter"].rps/res["ext-check"].rps, "throughput-filter/ext")
			b.ReportMetric((res["ext-check"].p50-res["proxy"].p50)*1000, "ext-check-added-p50-µs")
		})
	}
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return "status " + strconv.Itoa(e.code) }
