package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// BenchmarkChanges measures the store alone (no HTTP): a snapshot of
// 20,000 live revocations and a delta of 1,000.
func BenchmarkChanges(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			st := be.Open(b)
			ctx := context.Background()
			now := time.Now()
			keys := make([]string, 20_000)
			for i := range keys {
				keys[i] = fmt.Sprintf("fp:bench-%d", i)
			}
			require.NoError(b, st.RevokeKeys(ctx, keys, protocol.ReasonLogout, now.Add(time.Hour), now))
			epoch, _ := st.Epoch(ctx)
			b.Run("snapshot20k", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p, err := st.Changes(ctx, epoch, 0, store.MaxChangesLimit, now)
					if err != nil || len(p.Changes) != 20_000 {
						b.Fatal(err, len(p.Changes))
					}
				}
			})
			b.Run("delta1000", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p, err := st.Changes(ctx, epoch, 19_000, 1000, now)
					if err != nil || len(p.Changes) != 1000 {
						b.Fatal(err, len(p.Changes))
					}
				}
			})
		})
	}
}
