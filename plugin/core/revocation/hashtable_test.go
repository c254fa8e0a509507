package revocation

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkTable compares t with the model and checks its invariants: every
// entry is found from its home slot, the count matches, a slot is empty.
func checkTable(t *testing.T, ht *hashTable[entry], model map[uint64]entry) {
	t.Helper()
	require.Equal(t, len(model), ht.len())
	used := 0
	for _, s := range ht.slots {
		if s.h != 0 {
			used++
		}
	}
	require.Equal(t, len(model), used)
	if len(ht.slots) > 0 {
		require.Less(t, used, len(ht.slots), "no empty slot left")
	}
	for h, e := range model {
		got, ok := ht.get(h)
		require.True(t, ok, "hash %x lost", h)
		require.Equal(t, e, got)
	}
}

func TestHashTableAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   int    // distinct hashes drawn from
		spread uint64 // hashes share their high bits when small: long clusters, wrap-around
	}{
		{"uniform", 2000, 0},
		{"clustered", 300, 1 << 20},
		{"one-home", 40, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			hashes := make([]uint64, tc.keys)
			for i := range hashes {
				if tc.spread == 0 {
					hashes[i] = max(1, rng.Uint64())
				} else {
					// near the top of the hash space: homes at the end, probes wrap to 0
					hashes[i] = ^uint64(0) - rng.Uint64N(tc.spread)
				}
			}
			var ht hashTable[entry]
			model := map[uint64]entry{}
			for step := 0; step < 20000; step++ {
				h := hashes[rng.IntN(len(hashes))]
				switch op := rng.IntN(10); {
				case op < 6:
					e := mkEntry(rng.Int64N(1000), uint8(rng.IntN(5)))
					old, existed := ht.put(h, e)
					want, had := model[h]
					require.Equal(t, had, existed)
					require.Equal(t, want, old)
					model[h] = e
				case op < 9:
					_, had := model[h]
					require.Equal(t, had, ht.del(h))
					delete(model, h)
				default:
					cut := rng.Int64N(1000)
					removed := ht.prune(func(e entry) bool { return e.exp() >= cut })
					n := 0
					for k, e := range model {
						if e.exp() < cut {
							delete(model, k)
							n++
						}
					}
					require.Equal(t, n, removed)
				}
				if step%500 == 0 {
					checkTable(t, &ht, model)
				}
			}
			checkTable(t, &ht, model)
			for _, h := range hashes {
				if _, ok := model[h]; !ok {
					_, found := ht.get(h)
					require.False(t, found)
				}
			}
		})
	}
}

// A snapshot's first page sizes the table for the whole snapshot when it
// says how big that is (within reason).
func TestSnapshotTotalSizesTheTable(t *testing.T) {
	for _, tc := range []struct {
		total int64
		want  int
	}{
		{0, capacityFor(4 * 2)}, // unknown, more pages: room for 4 pages
		{1000, capacityFor(1000)},
		{1 << 40, capacityFor(maxSizeHint)},
	} {
		s := New()
		page := fmt.Sprintf(`{"epoch":"e","cursor":2,"more":true,"reset":true,"total":%d,"changes":[`+
			`{"seq":1,"op":"revoke","key":"sid:a"},{"seq":2,"op":"revoke","key":"sid:b"}]}`, tc.total)
		_, err := s.ApplyPage([]byte(page), time.Unix(1_800_000_000, 0))
		require.NoError(t, err)
		require.Len(t, s.pending.revoked.slots, tc.want, "total %d", tc.total)
	}
}

func TestHashTableEmpty(t *testing.T) {
	var ht hashTable[entry]
	_, ok := ht.get(42)
	require.False(t, ok)
	require.False(t, ht.del(42))
	require.Zero(t, ht.prune(func(entry) bool { return false }))
	sized := newHashTable[entry](100)
	require.Len(t, sized.slots, capacityFor(100))
	for i := uint64(1); i <= 100; i++ {
		sized.put(i<<40, mkEntry(int64(i), 0))
	}
	require.Len(t, sized.slots, capacityFor(100), "a table sized for n does not grow before n")
}

// A meta claiming a capacity whose byte size overflows is refused, not a
// panic (the product wraps to the buffer's length).
func TestAdoptTableHugeCapacity(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 16)} {
		_, err := adoptTable(b, 1, 1<<60-1, 0, 1)
		require.ErrorIs(t, err, ErrCorrupt)
	}
}
