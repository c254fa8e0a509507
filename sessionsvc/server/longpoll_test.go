package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestParseWait(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"25", 25 * time.Second, false}, {"0.5", 500 * time.Millisecond, false},
		{"25s", 25 * time.Second, false}, {"500ms", 500 * time.Millisecond, false}, {"90", MaxSyncWait, false},
		{"1h", MaxSyncWait, false}, {"-1", 0, true}, {"-1s", 0, true}, {"NaN", 0, true}, {"Inf", 0, true},
		{"1e3", 0, true}, {"soon", 0, true}, {"99999999999", 0, true}, {"25sss", 0, true},
	} {
		got, err := parseWait(tc.in)
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// longPoll runs GET sync with wait= in the background.
func longPoll(e *env, epoch string, cursor int64, wait string) <-chan protocol.SyncPage {
	out := make(chan protocol.SyncPage, 1)
	go func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s?epoch=%s&cursor=%d&wait=%s", e.http.URL, protocol.PathSync, epoch, cursor, wait), nil)
		req.Header.Set(protocol.HeaderKey, testKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			close(out)
			return
		}
		defer res.Body.Close()
		var p protocol.SyncPage
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&p) != nil {
			close(out)
			return
		}
		out <- p
	}()
	return out
}

// untilWaiting waits until n sync requests are parked in a long-poll.
func untilWaiting(t *testing.T, e *env, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var m dto.Metric
		return e.srv.metrics.syncWaiting.Write(&m) == nil && m.GetGauge().GetValue() == float64(n)
	},
		10*time.Second, time.Millisecond, "long-poll requests waiting")
}

func TestSyncLongPoll(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			open := func() *env {
				st, err := store.Open(context.Background(), u, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = st.Close() })
				// PostgreSQL: the listener connects in the background; until
				// then requests answer at once (tested below for SQLite,
				// which is ready at once).
				require.Eventually(t, st.(interface{ LongPollReady() bool }).LongPollReady, 10*time.Second, time.Millisecond)
				return newEnvWithStore(t, st)
			}
			e := open()
			first := e.syncPage("", 0, 0)
			require.True(t, first.Reset)

			// Nothing happens: the wait ends empty at its bound.
			start := time.Now()
			p, ok := <-longPoll(e, first.Epoch, first.Cursor, "300ms")
			require.True(t, ok)
			assert.Empty(t, p.Changes)
			assert.Equal(t, first.Cursor, p.Cursor)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

			// A revocation wakes the waiter, which answers with it at once.
			ch := longPoll(e, first.Epoch, first.Cursor, "20")
			untilWaiting(t, e, 1)
			t0 := time.Now()
			r := e.internal("POST", protocol.PathRevoke, protocol.RevokeRequest{Keys: []string{"fp:longpoll-1"}})
			require.Equal(t, 200, r.status, string(r.raw))
			select {
			case p, ok = <-ch:
				require.True(t, ok)
			case <-time.After(15 * time.Second):
				t.Fatal("the long-poll did not answer after a revocation")
			}
			require.Len(t, p.Changes, 1)
			assert.Equal(t, "fp:longpoll-1", p.Changes[0].Key)
			assert.Greater(t, p.Cursor, first.Cursor)
			t.Logf("woken %v after the revoke returned", time.Since(t0))

			// A wait at an old cursor answers at once.
			p, ok = <-longPoll(e, first.Epoch, first.Cursor, "20")
			require.True(t, ok)
			require.Len(t, p.Changes, 1)

			if b.Name != "postgres" {
				return
			}
			// Another replica's append wakes this replica's waiters (NOTIFY).
			other, err := store.Open(context.Background(), u, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = other.Close() })
			ch = longPoll(e, p.Epoch, p.Cursor, "20")
			untilWaiting(t, e, 1)
			now := time.Now()
			require.NoError(t, other.RevokeKeys(context.Background(), []string{"fp:longpoll-2"}, protocol.ReasonLogout, now.Add(time.Hour), now))
			select {
			case p2, ok := <-ch:
				require.True(t, ok)
				require.Len(t, p2.Changes, 1)
				assert.Equal(t, "fp:longpoll-2", p2.Changes[0].Key)
			case <-time.After(15 * time.Second):
				t.Fatal("the long-poll did not answer after another replica's revocation")
			}
		})
	}
}
