package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/meshsession/meshsession/internal/cputime"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// Benchmarks (go test -run='^$' -bench=. ./sessionsvc/server/) run against
// SQLite and PostgreSQL through the HTTP API of a real server. Seeding uses
// one set-based INSERT … SELECT per table on a side connection, so even a
// million sessions load in seconds.

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cputime.Now()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// benchSessions is MESHSESSION_BENCH_SESSIONS (default 1,000,000).
func benchSessions(b *testing.B) int {
	if v := os.Getenv("MESHSESSION_BENCH_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, "MESHSESSION_BENCH_SESSIONS")
		return n
	}
	return 1_000_000
}

type benchDB struct {
	name string
	url  string
	raw  *sql.DB
}

func openRaw(b *testing.B, u string) *sql.DB {
	if strings.HasPrefix(u, "sqlite://") {
		db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(u, "sqlite://")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
		require.NoError(b, err)
		db.SetMaxOpenConns(1)
		return db
	}
	cfg, err := pgx.ParseConfig(u)
	require.NoError(b, err)
	return stdlib.OpenDB(*cfg)
}

// benchEnv opens a store (and so the schema) on a fresh database, then a
// raw connection for seeding.
func benchEnv(b *testing.B, backend string, opts ...envOpt) (*env, *benchDB) {
	b.Helper()
	st, u := benchStore(b, backend)
	e := newEnvWithStore(b, st, opts...)
	raw := openRaw(b, u)
	b.Cleanup(func() { _ = raw.Close() })
	return e, &benchDB{name: backend, url: u, raw: raw}
}

// benchStore opens a store on a fresh database of backend (one of
// backends), closed at the end of the benchmark, and gives its URL.
func benchStore(b *testing.B, backend string) (store.Store, string) {
	b.Helper()
	u := storetest.SQLiteURL
	if backend == "postgres" {
		u = storetest.PostgresURL
	}
	url := u(b)
	return storetest.OpenURL(b, url), url
}

const seriesCTE = `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) `

// seedSessions inserts n active sessions for users user0..user(users-1),
// with key "sid:bench-<i>", logged in at base+i ms.
func (d *benchDB) seedSessions(b *testing.B, n, users int, base time.Time) {
	b.Helper()
	start := time.Now()
	ms := base.UnixMilli()
	_, err := d.raw.Exec(fmt.Sprintf(`INSERT INTO sessions (id, user_id, ip, user_agent, login_time, last_active, active,
		terminated_manually, termination_reason, device_type, browser_name, os_name, country, security_score, score_reasons, expires_at, route, locale) `+
		seriesCTE+`SELECT 'sess_bench' || i, 'user' || (i %% %d), '10.1.2.3', 'Mozilla/5.0 bench', %d + i, %d + i, TRUE,
		FALSE, '', 'desktop', 'Firefox 130', 'Linux', 'Germany', 95, '[]', %d, '/api/auth/local', '' FROM c`,
		n, users, ms, ms, base.Add(24*time.Hour).UnixMilli()))
	require.NoError(b, err)
	_, err = d.raw.Exec(fmt.Sprintf(`INSERT INTO session_keys (key, session_id, kind, expires_at) `+seriesCTE+
		`SELECT 'sid:bench-' || i, 'sess_bench' || i, 'session', %d FROM c`, n, base.Add(time.Hour).UnixMilli()))
	require.NoError(b, err)
	d.analyze(b, "sessions", "session_keys")
	b.Logf("%s: seeded %d sessions in %v", d.name, n, time.Since(start).Round(time.Millisecond))
}

// seedRevocations appends n revoke entries "fp:bench-<from+i>".
func (d *benchDB) seedRevocations(b *testing.B, from, n int, now time.Time) {
	b.Helper()
	_, err := d.raw.Exec(fmt.Sprintf(`INSERT INTO revocation_log (op, subject, key, user_id, exp, at, reason, latest, created_at) `+
		seriesCTE+`SELECT 'revoke', 'fp:bench-' || (i + %d), 'fp:bench-' || (i + %d), '', %d, 0, 'logout', TRUE, %d FROM c`,
		n, from, from, now.Add(time.Hour).Unix(), now.UnixMilli()))
	require.NoError(b, err)
	d.analyze(b, "revocation_log")
}

// analyze refreshes PostgreSQL's planner statistics after a bulk load (as
// autovacuum would). SQLite is left without statistics, as sessionsvc runs
// it: with STAT4 data it re-prepares statements on every new binding.
func (d *benchDB) analyze(b *testing.B, tables ...string) {
	if d.name != "postgres" {
		return
	}
	for _, t := range tables {
		_, err := d.raw.Exec(`ANALYZE ` + t)
		require.NoError(b, err)
	}
}

var backends = []string{"sqlite", "postgres"}

// BenchmarkActivityIngest posts batches of 1,000 marks for 10,000 sessions,
// written through (each batch committed before the answer) or buffered
// (the default in sessionsvc: latest mark per key, flushed every second
// as by default; the final flush is inside the measured time).
func BenchmarkActivityIngest(b *testing.B) {
	for _, be := range backends {
		for _, mode := range []string{"write-through", "buffered"} {
			b.Run(be+"/"+mode, func(b *testing.B) {
				var opts []envOpt
				if mode == "buffered" {
					opts = append(opts, func(c *Config) { c.ActivityFlushInterval = time.Second })
				}
				e, d := benchEnv(b, be, opts...)
				const sessions, batch = 10_000, 1000
				base := time.Now().Add(-time.Hour)
				d.seedSessions(b, sessions, 1000, base)
				ctx, cancel := context.WithCancel(context.Background())
				flusherDone := make(chan struct{})
				go func() { e.srv.RunActivityFlusher(ctx); close(flusherDone) }()
				client := &http.Client{}
				at := time.Now().Add(-30 * time.Minute).UnixMilli()
				b.ResetTimer()
				cpu0 := cputime.Now()
				for i := 0; i < b.N; i++ {
					marks := make([]protocol.Activity, batch)
					for j := range marks {
						at++
						marks[j] = protocol.Activity{Key: "sid:bench-" + strconv.Itoa(1+(i*batch+j)%sessions), At: at}
					}
					body, _ := json.Marshal(marks)
					req, _ := http.NewRequest("POST", e.http.URL+protocol.PathActivity, bytes.NewReader(body))
					req.Header.Set(protocol.HeaderKey, testKey)
					res, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
				cancel()
				<-flusherDone // final flush
				b.StopTimer()
				reportCPU(b, cpu0)
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "updates/s")
				// The last mark reached the database.
				s, err := e.st.FindSessionByKeys(context.Background(), []string{"sid:bench-" + strconv.Itoa(1+(b.N*batch-1)%sessions)})
				require.NoError(b, err)
				require.Equal(b, at, s.LastActive.UnixMilli())
			})
		}
	}
}

func getSync(b *testing.B, client *http.Client, base, epoch string, cursor int64, limit int) protocol.SyncPage {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s?epoch=%s&cursor=%d&limit=%d", base, protocol.PathSync, url.QueryEscape(epoch), cursor, limit), nil)
	req.Header.Set(protocol.HeaderKey, testKey)
	res, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.Fatal(err)
	}
	// The client's decoding is not the server's cost: only the head of the
	// page is decoded, changes are counted.
	var p protocol.SyncPage
	head := body
	if i := bytes.Index(body, []byte(`,"changes":`)); i > 0 {
		head = append(append([]byte{}, body[:i]...), '}')
	}
	if err := json.Unmarshal(head, &p); err != nil {
		b.Fatal(err)
	}
	p.Changes = make([]protocol.Change, bytes.Count(body, []byte(`{"seq":`)))
	return p
}

// BenchmarkSyncDelta1000 reads a delta of 1,000 changes after a cursor in a
// log of 101,000 entries.
func BenchmarkSyncDelta1000(b *testing.B) {
	for _, be := range backends {
		b.Run(be, func(b *testing.B) {
			e, d := benchEnv(b, be)
			now := time.Now()
			d.seedRevocations(b, 0, 100_000, now)
			epoch, _ := e.st.Epoch(context.Background())
			client := &http.Client{}
			head := getSync(b, client, e.http.URL, epoch, 0, 100_000).Cursor
			d.seedRevocations(b, 100_000, 1000, now)
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 0; i < b.N; i++ {
				p := getSync(b, client, e.http.URL, epoch, head, 1000)
				if len(p.Changes) != 1000 {
					b.Fatalf("got %d changes", len(p.Changes))
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkSyncSnapshot100k reads a full snapshot of 100,000 live
// revocations in one page: "cached" through the HTTP API with the store's
// feed cache warm (every poll after the first), "cold" at the store level
// on a freshly opened store (the first snapshot after a start).
func BenchmarkSyncSnapshot100k(b *testing.B) {
	for _, be := range backends {
		b.Run(be+"/cached", func(b *testing.B) {
			e, d := benchEnv(b, be)
			d.seedRevocations(b, 0, 100_000, time.Now())
			epoch, _ := e.st.Epoch(context.Background())
			client := &http.Client{}
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 0; i < b.N; i++ {
				p := getSync(b, client, e.http.URL, epoch, 0, 100_000)
				if len(p.Changes) != 100_000 || p.More {
					b.Fatalf("got %d changes, more=%v", len(p.Changes), p.More)
				}
			}
			reportCPU(b, cpu0)
		})
		b.Run(be+"/cached-binary", func(b *testing.B) {
			// The same snapshot in the binary form the plugin asks for.
			e, d := benchEnv(b, be)
			d.seedRevocations(b, 0, 100_000, time.Now())
			epoch, _ := e.st.Epoch(context.Background())
			client := &http.Client{}
			url := fmt.Sprintf("%s%s?epoch=%s&cursor=0&limit=100000&format=binary", e.http.URL, protocol.PathSync, url.QueryEscape(epoch))
			var size int
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set(protocol.HeaderKey, testKey)
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != protocol.ContentTypeBinaryPage {
					b.Fatalf("status %d, %v: %.200s", res.StatusCode, err, body)
				}
				size = len(body)
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(size), "bytes/page")
		})
		b.Run(be+"/cold", func(b *testing.B) {
			e, d := benchEnv(b, be)
			d.seedRevocations(b, 0, 100_000, time.Now())
			epoch, _ := e.st.Epoch(context.Background())
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st, err := store.Open(context.Background(), d.url, nil)
				require.NoError(b, err)
				b.StartTimer()
				p, err := st.Changes(context.Background(), epoch, 0, 100_000, time.Now())
				b.StopTimer()
				require.NoError(b, err)
				require.Len(b, p.Changes, 100_000)
				_ = appendSyncPage(nil, &p)
				require.NoError(b, st.Close())
				b.StartTimer()
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkMySessions lists one user's sessions (10 per user) among
// MESHSESSION_BENCH_SESSIONS stored sessions, with JWT verification and
// current-session lookup, and reports the p99 latency.
func BenchmarkMySessions(b *testing.B) {
	for _, be := range backends {
		b.Run(be, func(b *testing.B) {
			e, d := benchEnv(b, be)
			n := benchSessions(b)
			users := n / 10
			if users < 1 {
				users = 1
			}
			d.seedSessions(b, n, users, time.Now().Add(-time.Hour))
			client := &http.Client{}
			toks := make([]string, 64)
			for i := range toks {
				u := (i * 7919) % users
				// session i has user (i % users): pick session u+users as this user's current one.
				toks[i] = token(b, "user"+strconv.Itoa(u), "bench-"+strconv.Itoa(u+users), nil)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest("GET", e.http.URL+"/api/magic-sessionmanager/my-sessions", nil)
				req.Header.Set("Authorization", "Bearer "+toks[i%len(toks)])
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				lat = append(lat, time.Since(t0))
				if res.StatusCode != 200 {
					b.Fatalf("status %d: %s", res.StatusCode, body)
				}
				if i == 0 && !bytes.Contains(body, []byte(`"isCurrentSession":true`)) {
					b.Fatalf("current session not marked: %s", body[:min(len(body), 300)])
				}
			}
			b.StopTimer()
			reportCPU(b, cpu0)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(n), "stored-sessions")
		})
	}
}
