package enrich_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
	"github.com/meshsession/meshsession/sessionsvc/enrich/policy"
	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// writeBigList writes n disjoint IPv4 /28 ranges (and every 4th an IPv6 /48).
func writeBigList(b *testing.B, path string, n int, salt uint32) {
	f, err := os.Create(path)
	require.NoError(b, err)
	w := bufio.NewWriter(f)
	for i := range n {
		if i%4 == 3 {
			var a [16]byte
			binary.BigEndian.PutUint64(a[:8], 0x2400000000000000|uint64(i)<<16|uint64(salt))
			fmt.Fprintf(w, "%s/48\n", netip.AddrFrom16(a))
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x10000000+uint32(i)*64+salt*16)
		fmt.Fprintf(w, "%s/28\n", netip.AddrFrom4(a))
	}
	require.NoError(b, w.Flush())
	require.NoError(b, f.Close())
}

// memStore answers the history read EnrichLogin makes from memory, to measure
// the enrichment's own cost apart from the database.
type memStore struct {
	enrich.Store
	hist []store.Session
}

func (m memStore) ListSessions(context.Context, store.SessionQuery) (store.SessionPage, error) {
	return store.SessionPage{Sessions: m.hist, Total: len(m.hist)}, nil
}

// BenchmarkEnrichLogin: a login of a user with 50 sessions of history in a
// real SQLite store, a City database, and five reputation lists of 200,000
// ranges each (1,000,000 in all). Target: < 1 ms.
func BenchmarkEnrichLogin(b *testing.B) {
	dir := b.TempDir()
	mmdb := filepath.Join(dir, "city.mmdb")
	require.NoError(b, geoiptest.Write(mmdb, geoiptest.City, geoiptest.Samples))
	files := reputation.Files{
		Tor: filepath.Join(dir, "tor"), VPN: filepath.Join(dir, "vpn"), Proxy: filepath.Join(dir, "proxy"),
		Datacenter: filepath.Join(dir, "dc"), Threat: filepath.Join(dir, "threat"),
	}
	for i, p := range []string{files.Tor, files.VPN, files.Proxy, files.Datacenter, files.Threat} {
		writeBigList(b, p, 200_000, uint32(i))
	}
	sqlite := storetest.OpenSQLite(b)
	hist := seedHistory(b, sqlite)
	for _, tc := range []struct {
		name string
		st   enrich.Store
	}{{"sqlite", sqlite}, {"memory", memStore{hist: hist[:50]}}} {
		b.Run(tc.name, func(b *testing.B) { benchEnrich(b, tc.st, mmdb, files) })
	}
}

func benchEnrich(b *testing.B, st enrich.Store, mmdb string, files reputation.Files) {
	ctx := context.Background()
	h := policy.NewHolder(nil)
	svc, err := enrich.New(enrich.Config{GeoIPPath: mmdb, Reputation: files, Policy: h.Get,
		AlertChannels: func(string) []string { return []string{"email", "webhook:ops"} }}, st, nil)
	require.NoError(b, err)
	for _, s := range svc.Lists().Status() {
		require.True(b, s.Loaded, s.Category)
	}
	login := enrich.Login{UserID: "bench", IP: "85.214.10.20", Locale: "de",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}
	b.ResetTimer()
	for b.Loop() {
		login.At = time.Now()
		res, err := svc.EnrichLogin(ctx, login)
		if err != nil || len(res.Reasons) == 0 {
			b.Fatalf("unexpected: %v %+v", err, res)
		}
	}
}

// seedHistory stores 60 hourly logins of user "bench" from London, the
// last 60 hours, and returns them newest first.
func seedHistory(b *testing.B, st store.Store) []store.Session {
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-100 * time.Hour)
	var hist []store.Session
	for i := range 60 {
		geo := &store.GeoLocation{CountryCode: "GB", Country: "United Kingdom", City: "London", Latitude: 51.5, Longitude: -0.09}
		s := &store.Session{UserID: "bench", IP: "81.2.69.142", LoginTime: t0.Add(time.Duration(i) * time.Hour),
			BrowserName: "Chrome 131", OSName: "Windows 10", DeviceType: "desktop", Geo: geo, SecurityScore: 100}
		require.NoError(b, st.CreateSession(ctx, s, []store.SessionKey{{Key: fmt.Sprintf("fp:bench-%d", i), Kind: store.KeyAccess}}, nil))
		hist = append([]store.Session{*s}, hist...)
	}
	return hist
}

// BenchmarkStoreCalls: the store reads one login's enrichment makes.
func BenchmarkStoreCalls(b *testing.B) {
	st := storetest.OpenSQLite(b)
	seedHistory(b, st)
	ctx := context.Background()
	b.Run("history50", func(b *testing.B) {
		for b.Loop() {
			st.ListSessions(ctx, store.SessionQuery{UserID: "bench", Limit: 50, Sort: "loginTime", Desc: true})
		}
	})
	b.Run("history10", func(b *testing.B) {
		for b.Loop() {
			st.ListSessions(ctx, store.SessionQuery{UserID: "bench", Limit: 10, Sort: "loginTime", Desc: true})
		}
	})
	b.Run("activeCount", func(b *testing.B) {
		for b.Loop() {
			st.ListSessions(ctx, store.SessionQuery{UserID: "bench", ActiveOnly: true, Limit: 1})
		}
	})
	b.Run("countFailed", func(b *testing.B) {
		for b.Loop() {
			st.CountFailedLogins(ctx, "lock:ip:1.2.3.4", time.Now().Add(-time.Hour))
		}
	})
}
