package dashboard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestLiveEventsReportedOnce: the poll re-reads lateWindow before its
// marks, so the newest start and end stay readable until a newer one
// comes; however long that takes (the clock moves a minute here), each
// goes out once. It used to go out again every 4×lateWindow.
func TestLiveEventsReportedOnce(t *testing.T) {
	for _, be := range storetest.Backends() {
		for _, figures := range []bool{true, false} {
			name := be.Name + "/sql"
			if !figures {
				name = be.Name + "/store-only"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				u := be.URL(t)
				st := storetest.OpenURL(t, u)
				var mu sync.Mutex
				clock := time.Now().UTC().Truncate(time.Millisecond)
				now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
				advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
				cfg := Config{Store: st, Now: now}
				if figures {
					cfg.DatabaseURL = u
				}
				d, err := New(ctx, cfg)
				require.NoError(t, err)
				t.Cleanup(func() { _ = d.Close() })
				require.Equal(t, figures, d.stats != nil)

				m := newLiveMarks(now().UnixMilli())
				assert.Empty(t, d.pollOnce(ctx, m))

				login := now().Add(time.Second)
				s := &store.Session{UserID: "dave", IP: "192.0.2.9", LoginTime: login, LastActive: login, Active: true,
					ExpiresAt: login.Add(time.Hour), Route: "/api/auth/local"}
				require.NoError(t, st.CreateSession(ctx, s,
					[]store.SessionKey{{Key: "sid:dave", Kind: store.KeySession, ExpiresAt: login.Add(time.Hour)}}, nil))
				advance(time.Second)
				cs := d.pollOnce(ctx, m)
				require.Len(t, cs, 1)
				assert.Equal(t, change{Type: "started", ID: s.ID, UserID: "dave", At: login.UnixMilli()}, cs[0])

				logout := login.Add(time.Second)
				_, err = st.EndSessions(ctx, store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonManual, true, logout)
				require.NoError(t, err)
				advance(time.Second)
				cs = d.pollOnce(ctx, m)
				require.Len(t, cs, 1)
				assert.Equal(t, "ended", cs[0].Type)
				assert.Equal(t, "manual", cs[0].Reason)

				// Nothing newer for a minute: polled every 5 s, nothing is repeated.
				for i := range 12 {
					advance(5 * time.Second)
					assert.Empty(t, d.pollOnce(ctx, m), "poll %d, %s after the last event", i, now().Sub(logout))
				}
				assert.Len(t, m.seen, 2, "kept while the re-read window returns them")

				// A newer start moves the mark: the first one is forgotten, the new one reported once.
				login2 := now()
				s2 := &store.Session{UserID: "erin", IP: "192.0.2.10", LoginTime: login2, LastActive: login2, Active: true,
					ExpiresAt: login2.Add(time.Hour), Route: "/api/auth/local"}
				require.NoError(t, st.CreateSession(ctx, s2,
					[]store.SessionKey{{Key: "sid:erin", Kind: store.KeySession, ExpiresAt: login2.Add(time.Hour)}}, nil))
				cs = d.pollOnce(ctx, m)
				require.Len(t, cs, 1)
				assert.Equal(t, s2.ID, cs[0].ID)
				assert.Empty(t, d.pollOnce(ctx, m))
				assert.NotContains(t, m.seen, "started:"+s.ID, "out of the re-read window")
			})
		}
	}
}
