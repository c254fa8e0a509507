package enrich_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

func BenchmarkStoreCalls(b *testing.B) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), nil)
	require.NoError(b, err)
	defer st.Close()
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-100 * time.Hour)
	for i := range 60 {
		geo := &store.GeoLocation{CountryCode: "GB", Country: "United Kingdom", City: "London", Latitude: 51.5, Longitude: -0.09}
		s := &store.Session{UserID: "bench", IP: "81.2.69.142", LoginTime: t0.Add(time.Duration(i) * time.Hour),
			BrowserName: "Chrome 131", OSName: "Windows 10", DeviceType: "desktop", Geo: geo, SecurityScore: 100}
		require.NoError(b, st.CreateSession(ctx, s, []store.SessionKey{{Key: fmt.Sprintf("fp:bench-%d", i), Kind: store.KeyAccess}}, nil))
	}
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
