// Package reputation matches ip addresses against operator-provided lists
// (Tor exit addresses, VPN, proxy and datacenter ranges, known threats).
//
// Each list becomes a Set: sorted, merged, non-overlapping intervals per
// address family, searched with a binary search, so a lookup costs about
// log2(n) comparisons (~20 for a million ranges) and no allocation.
package reputation

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1 and whether it did not overflow.
func (a u128) next() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, false
		}
	}
	return u128{hi, lo}, true
}

type span4 struct{ lo, hi uint32 }
type span6 struct{ lo, hi u128 }

// Set is an immutable set of addresses. The zero value is empty. Safe for
// concurrent use.
type Set struct {
	v4 []span4
	v6 []span6
}

// Ranges is the number of merged intervals.
func (s *Set) Ranges() int {
	if s == nil {
		return 0
	}
	return len(s.v4) + len(s.v6)
}

// Contains reports whether a is in the set. IPv4-mapped IPv6 addresses are
// matched as IPv4; an invalid address is never contained.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		v := s.v4
		// first span with hi >= x
		i, j := 0, len(v)
		for i < j {
			h := int(uint(i+j) >> 1)
			if v[h].hi < x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i < len(v) && v[i].lo <= x
	}
	x := to128(a)
	v := s.v6
	i, j := 0, len(v)
	for i < j {
		h := int(uint(i+j) >> 1)
		if v[h].hi.less(x) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(v) && !x.less(v[i].lo)
}

func to128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// Builder collects addresses and ranges into a Set.
type Builder struct {
	v4 []span4
	v6 []span6
}

// AddPrefix adds every address of p.
func (b *Builder) AddPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid prefix %v", p)
	}
	p = p.Masked()
	lo := p.Addr()
	if lo.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(lo.Unmap(), p.Bits()-96)
		lo = p.Addr()
	}
	return b.AddRange(lo, lastAddr(p))
}

// AddRange adds [lo, hi]; both of one family, lo <= hi.
func (b *Builder) AddRange(lo, hi netip.Addr) error {
	if !lo.IsValid() || !hi.IsValid() {
		return fmt.Errorf("invalid range %v-%v", lo, hi)
	}
	lo, hi = lo.Unmap(), hi.Unmap()
	if lo.Is4() != hi.Is4() {
		return fmt.Errorf("range %v-%v mixes address families", lo, hi)
	}
	if hi.Less(lo) {
		return fmt.Errorf("range %v-%v ends before it starts", lo, hi)
	}
	if lo.Is4() {
		l, h := lo.As4(), hi.As4()
		b.v4 = append(b.v4, span4{binary.BigEndian.Uint32(l[:]), binary.BigEndian.Uint32(h[:])})
		return nil
	}
	b.v6 = append(b.v6, span6{to128(lo), to128(hi)})
	return nil
}

// AddAddr adds one address.
func (b *Builder) AddAddr(a netip.Addr) error { return b.AddRange(a, a) }

// Build sorts and merges what was added. The builder is reset.
func (b *Builder) Build() *Set {
	s := &Set{v4: merge4(b.v4), v6: merge6(b.v6)}
	b.v4, b.v6 = nil, nil
	return s
}

func merge4(v []span4) []span4 {
	if len(v) == 0 {
		return nil
	}
	slices.SortFunc(v, func(a, b span4) int { return cmp.Compare(a.lo, b.lo) })
	out := v[:1]
	for _, s := range v[1:] {
		last := &out[len(out)-1]
		if last.hi == ^uint32(0) || s.lo <= last.hi+1 {
			if s.hi > last.hi {
				last.hi = s.hi
			}
			continue
		}
		out = append(out, s)
	}
	return slices.Clip(out)
}

func merge6(v []span6) []span6 {
	if len(v) == 0 {
		return nil
	}
	slices.SortFunc(v, func(a, b span6) int { return a.lo.cmp(b.lo) })
	out := v[:1]
	for _, s := range v[1:] {
		last := &out[len(out)-1]
		n, ok := last.hi.next()
		if !ok || !n.less(s.lo) {
			if last.hi.less(s.hi) {
				last.hi = s.hi
			}
			continue
		}
		out = append(out, s)
	}
	return slices.Clip(out)
}

// lastAddr is the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		if p.Bits() < 32 {
			x |= ^uint32(0) >> p.Bits()
		}
		binary.BigEndian.PutUint32(b[:], x)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	bits := p.Bits()
	switch {
	case bits == 0:
		hi, lo = ^uint64(0), ^uint64(0)
	case bits < 64:
		hi |= ^uint64(0) >> bits
		lo = ^uint64(0)
	case bits < 128:
		lo |= ^uint64(0) >> (bits - 64)
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}
