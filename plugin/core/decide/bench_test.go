package decide_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshsession/meshsession/internal/cputime"
	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// bigState returns a state of n revocations (half sid:, half fp:), plus 1%
// blocked users and 1% not-before entries.
func bigState(b *testing.B, n int) *revocation.State {
	changes := make([]protocol.Change, 0, n+n/50)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("fp:%043d", i)
		if i%2 == 0 {
			key = fmt.Sprintf("sid:%08x-0000-4000-8000-%012x", i, i)
		}
		changes = append(changes, protocol.Change{Op: protocol.OpRevoke, Key: key, Exp: now.Unix() + 3600, Reason: protocol.ReasonManual})
	}
	for i := 0; i < n/100; i++ {
		changes = append(changes, protocol.Change{Op: protocol.OpBlock, User: fmt.Sprintf("blocked-%d", i)})
		changes = append(changes, protocol.Change{Op: protocol.OpNotBefore, User: fmt.Sprintf("nb-%d", i), At: now.Unix() - 100})
	}
	return state(b, changes...)
}

func benchDecide(b *testing.B, cfg string, tok string, sizes []int, cache bool) {
	for _, n := range sizes {
		st := bigState(b, n)
		e := engine(b, cfg)
		if !cache {
			e.SetTokenCache(0)
		}
		req := &decide.Request{Path: "/api/articles?page=2", Method: "GET", Authorization: "Bearer " + tok, LastSync: now}
		b.Run(fmt.Sprintf("revocations=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := cputime.Report()
			for b.Loop() {
				if d := e.Decide(now, req, st); d.Action != decide.Pass {
					b.Fatal(d.Reason, d.Err)
				}
			}
			b.ReportMetric(cpu(b.N), "cpu-ns/op")
		})
	}
}

// A typical Strapi-like access token (~230 bytes).
var benchPayload = fmt.Sprintf(`{"id":42,"sub":"42","sessionId":"3f2b8c1e-5d4a-4b7e-9c2d-1a2b3c4d5e6f","iat":%d,"exp":%d}`, now.Unix()-60, now.Unix()+1800)

// Steady state: the client presents the same token again (token cache hit).
func BenchmarkDecideNone(b *testing.B) {
	benchDecide(b, ``, jwttest.HS256("secret", hsHeader, benchPayload), []int{1000, 10000, 100000}, true)
}

// Every request decodes and hashes the token (token cache disabled).
func BenchmarkDecideNoneUncached(b *testing.B) {
	benchDecide(b, ``, jwttest.HS256("secret", hsHeader, benchPayload), []int{1000, 10000, 100000}, false)
}

func BenchmarkDecideHS256(b *testing.B) {
	benchDecide(b, `{"verify":{"mode":"hs256","secret":"secret"}}`, jwttest.HS256("secret", hsHeader, benchPayload), []int{100000}, true)
}

func BenchmarkDecideHS256Uncached(b *testing.B) {
	benchDecide(b, `{"verify":{"mode":"hs256","secret":"secret"}}`, jwttest.HS256("secret", hsHeader, benchPayload), []int{100000}, false)
}

// Many clients: 10,000 distinct tokens in rotation (more than the cache
// holds, so most requests miss).
func BenchmarkDecideManyTokens(b *testing.B) {
	st := bigState(b, 100000)
	e := engine(b, ``)
	reqs := make([]decide.Request, 10000)
	for i := range reqs {
		tok := jwttest.HS256("secret", hsHeader, fmt.Sprintf(`{"id":%d,"sessionId":"sess-%d","iat":%d,"exp":%d}`, i, i, now.Unix()-60, now.Unix()+1800))
		reqs[i] = decide.Request{Path: "/api", Authorization: "Bearer " + tok, LastSync: now}
	}
	b.ReportAllocs()
	i := 0
	cpu := cputime.Report()
	for b.Loop() {
		if d := e.Decide(now, &reqs[i%len(reqs)], st); d.Action != decide.Pass {
			b.Fatal(d.Reason)
		}
		i++
	}
	b.ReportMetric(cpu(b.N), "cpu-ns/op")
}

func BenchmarkDecideRevoked(b *testing.B) {
	st := bigState(b, 100000)
	e := engine(b, ``)
	tok := jwttest.HS256("secret", hsHeader, `{"sid":"00000002-0000-4000-8000-000000000002","sub":"7"}`)
	req := &decide.Request{Path: "/api", Authorization: "Bearer " + tok, LastSync: now}
	b.ReportAllocs()
	cpu := cputime.Report()
	for b.Loop() {
		if d := e.Decide(now, req, st); d.Action != decide.Refuse {
			b.Fatal("not refused")
		}
	}
	b.ReportMetric(cpu(b.N), "cpu-ns/op")
}

func BenchmarkDecideNoToken(b *testing.B) {
	st := bigState(b, 1000)
	e := engine(b, ``)
	req := &decide.Request{Path: "/api", Cookie: "theme=dark; lang=en", LastSync: now}
	b.ReportAllocs()
	cpu := cputime.Report()
	for b.Loop() {
		_ = e.Decide(now, req, st)
	}
	b.ReportMetric(cpu(b.N), "cpu-ns/op")
}

var _ = time.Second
