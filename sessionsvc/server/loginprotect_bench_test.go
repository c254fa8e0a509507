package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// BenchmarkLoginCheck is the pre-login check (one indexed read) and
// BenchmarkFailedLogin a counted failure (two upserts, ip and identifier),
// through the handler, on SQLite and PostgreSQL.
func BenchmarkLoginCheck(b *testing.B) {
	benchLoginProtection(b, protocol.PathLoginCheck)
}

func BenchmarkFailedLogin(b *testing.B) {
	benchLoginProtection(b, protocol.PathFailed)
}

func benchLoginProtection(b *testing.B, path string) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			e := newEnvWithStore(b, be.Open(b))
			// A few locks in force, as in a real table.
			for i := range 50 {
				for range 5 {
					e.fail("198.51.100.1", fmt.Sprintf("locked%d", i))
				}
			}
			h := e.srv.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				body := fmt.Appendf(nil, `{"ip":"203.0.113.%d","identifier":"user%d","userAgent":"bench","status":400}`, i%250, i)
				if path == protocol.PathLoginCheck {
					body = fmt.Appendf(nil, `{"ip":"203.0.113.%d","identifier":"user%d","userAgent":"bench"}`, i%250, i)
				}
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
				req.Header.Set(protocol.HeaderKey, testKey)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
