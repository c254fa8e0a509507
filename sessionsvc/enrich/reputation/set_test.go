package reputation

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustSet(t testing.TB, list string) *Set {
	t.Helper()
	s, rep, err := Parse(strings.NewReader(list))
	require.NoError(t, err)
	require.Zero(t, rep.Malformed, "%+v", rep.Bad)
	return s
}

func TestSetContains(t *testing.T) {
	s := mustSet(t, `
# tor exits
192.0.2.1
198.51.100.0/24
203.0.113.10-203.0.113.20
10.0.0.0/8
10.1.0.0/16       # inside the /8, merged
2001:db8::/32
2001:db9::1
::ffff:100.64.0.1  # mapped v4 is stored as v4
255.255.255.255
`)
	tests := []struct {
		ip   string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.0", false},
		{"192.0.2.2", false},
		{"198.51.100.0", true},
		{"198.51.100.255", true},
		{"198.51.101.0", false},
		{"203.0.113.9", false},
		{"203.0.113.10", true},
		{"203.0.113.20", true},
		{"203.0.113.21", false},
		{"10.255.255.255", true},
		{"11.0.0.0", false},
		{"::ffff:192.0.2.1", true}, // mapped looked up as v4
		{"100.64.0.1", true},
		{"255.255.255.255", true},
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", true},
		{"2001:db9::2", false},
		{"::1", false},
		{"0.0.0.0", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, s.Contains(netip.MustParseAddr(tt.ip)), tt.ip)
	}
	assert.False(t, s.Contains(netip.Addr{}), "invalid address")
	var empty *Set
	assert.False(t, empty.Contains(netip.MustParseAddr("1.1.1.1")))
}

func TestSetMergesAdjacentAndOverlapping(t *testing.T) {
	s := mustSet(t, "1.0.0.0/24\n1.0.1.0/24\n1.0.0.128/25\n0.0.0.0/0\n::/0\n2001:db8::/32\n")
	assert.Equal(t, 2, s.Ranges(), "everything collapses into one range per family")
	assert.True(t, s.Contains(netip.MustParseAddr("255.255.255.255")))
	assert.True(t, s.Contains(netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))

	s = mustSet(t, "1.0.0.0/24\n1.0.1.0/24\n1.0.3.0/24\n")
	assert.Equal(t, 2, s.Ranges(), "adjacent ranges merge, gaps stay")
	assert.False(t, s.Contains(netip.MustParseAddr("1.0.2.7")))
}

// TestSetMatchesBruteForce compares the interval search with a linear scan
// over the prefixes that built it.
func TestSetMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b Builder
	var prefixes []netip.Prefix
	for range 2000 {
		var p netip.Prefix
		if r.IntN(4) == 0 {
			var a [16]byte
			binary.BigEndian.PutUint64(a[:8], 0x20010db800000000|r.Uint64()&0xffffffff)
			binary.BigEndian.PutUint64(a[8:], r.Uint64())
			p = netip.PrefixFrom(netip.AddrFrom16(a), 32+r.IntN(97)).Masked()
		} else {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], r.Uint32()&0x0fffffff)
			p = netip.PrefixFrom(netip.AddrFrom4(a), 12+r.IntN(21)).Masked()
		}
		prefixes = append(prefixes, p)
		require.NoError(t, b.AddPrefix(p))
	}
	s := b.Build()
	for range 20000 {
		var a netip.Addr
		if r.IntN(4) == 0 {
			p := prefixes[r.IntN(len(prefixes))]
			a = p.Addr()
			if r.IntN(2) == 0 {
				a = lastAddr(p)
			}
			if r.IntN(3) == 0 {
				a = a.Next()
			}
		} else {
			var x [4]byte
			binary.BigEndian.PutUint32(x[:], r.Uint32()&0x0fffffff)
			a = netip.AddrFrom4(x)
		}
		if !a.IsValid() {
			continue
		}
		want := false
		for _, p := range prefixes {
			if p.Contains(a) {
				want = true
				break
			}
		}
		require.Equal(t, want, s.Contains(a), "%v", a)
	}
}

func TestLastAddr(t *testing.T) {
	tests := []struct{ p, want string }{
		{"10.0.0.0/8", "10.255.255.255"},
		{"1.2.3.4/32", "1.2.3.4"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::/96", "2001:db8::ffff:ffff"},
		{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::1/128", "2001:db8::1"},
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, lastAddr(netip.MustParsePrefix(tt.p)).String(), tt.p)
	}
}

func TestBuilderRejectsBadRanges(t *testing.T) {
	var b Builder
	assert.Error(t, b.AddRange(netip.MustParseAddr("1.0.0.9"), netip.MustParseAddr("1.0.0.1")))
	assert.Error(t, b.AddRange(netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr("::1")))
	assert.Error(t, b.AddRange(netip.Addr{}, netip.MustParseAddr("1.0.0.1")))
	assert.Error(t, b.AddPrefix(netip.Prefix{}))
}

// genRanges builds n disjoint ranges spread over IPv4 and IPv6 (1 in 4).
func genRanges(n int) (*Set, []netip.Addr) {
	r := rand.New(rand.NewPCG(7, 9))
	var b Builder
	probes := make([]netip.Addr, 0, 4096)
	for i := range n {
		if i%4 == 3 {
			var a [16]byte
			binary.BigEndian.PutUint64(a[:8], 0x2000000000000000|uint64(i)<<16)
			lo := netip.AddrFrom16(a)
			_ = b.AddPrefix(netip.PrefixFrom(lo, 48))
			if len(probes) < cap(probes) && r.IntN(64) == 0 {
				probes = append(probes, lo.Next())
			}
			continue
		}
		base := uint32(i) * 3000
		var lo, hi [4]byte
		binary.BigEndian.PutUint32(lo[:], base)
		binary.BigEndian.PutUint32(hi[:], base+uint32(r.IntN(2000)))
		_ = b.AddRange(netip.AddrFrom4(lo), netip.AddrFrom4(hi))
		if len(probes) < cap(probes) && r.IntN(64) == 0 {
			var p [4]byte
			binary.BigEndian.PutUint32(p[:], base+uint32(r.IntN(3000)))
			probes = append(probes, netip.AddrFrom4(p))
		}
	}
	return b.Build(), probes
}

func TestGenRanges(t *testing.T) {
	s, probes := genRanges(10000)
	assert.Equal(t, 10000, s.Ranges())
	assert.NotEmpty(t, probes)
}

// BenchmarkContains1M: one lookup in a set of 1,000,000 ranges (target < 2 µs).
func BenchmarkContains1M(b *testing.B) {
	s, probes := genRanges(1_000_000)
	if s.Ranges() != 1_000_000 {
		b.Fatalf("ranges = %d", s.Ranges())
	}
	benchProbes(b, probes, s.Contains)
}

// BenchmarkCheck1M: all five lists of a Lists checked, each with 1,000,000 ranges.
func BenchmarkCheck1M(b *testing.B) {
	s, probes := genRanges(1_000_000)
	l := &Lists{}
	snap := &snapshot{}
	for c := range numCategories {
		snap.sets[c] = s
	}
	l.cur.Store(snap)
	benchProbes(b, probes, l.Check)
}

// benchProbes times lookup, one probe an iteration, round robin.
func benchProbes[R any](b *testing.B, probes []netip.Addr, lookup func(netip.Addr) R) {
	b.ResetTimer()
	i := 0
	for b.Loop() {
		lookup(probes[i%len(probes)])
		i++
	}
}

func FuzzParse(f *testing.F) {
	f.Add("192.0.2.1\n198.51.100.0/24 # c\n1.1.1.1-1.1.1.9\nExitAddress 192.0.2.9 2024-01-01 00:00:00\n2001:db8::/32\n")
	f.Add("::ffff:1.2.3.4/120\nfe80::1%eth0\n")
	f.Fuzz(func(t *testing.T, s string) {
		set, rep, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		if rep.Malformed < len(rep.Bad) {
			t.Fatalf("report inconsistent: %+v", rep)
		}
		for i := 1; i < len(set.v4); i++ {
			if set.v4[i].lo <= set.v4[i-1].hi {
				t.Fatalf("v4 spans overlap or unsorted")
			}
		}
		for i := 1; i < len(set.v6); i++ {
			if !set.v6[i-1].hi.less(set.v6[i].lo) {
				t.Fatalf("v6 spans overlap or unsorted")
			}
		}
	})
}
