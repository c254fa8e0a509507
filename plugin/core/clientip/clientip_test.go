package clientip_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/plugin/core/clientip"
)

func TestFrom(t *testing.T) {
	tests := []struct {
		name, xff string
		hops      int
		src, want string
	}{
		{"source only", "", 0, "10.0.0.1:5555", "10.0.0.1"},
		{"xff ignored without trusted hops", "1.1.1.1", 0, "10.0.0.1:5555", "10.0.0.1"},
		{"one hop: rightmost", "6.6.6.6, 1.1.1.1", 1, "10.0.0.1:1", "1.1.1.1"},
		{"two hops", "6.6.6.6, 2.2.2.2, 1.1.1.1", 2, "10.0.0.1:1", "2.2.2.2"},
		{"spoofed left part ignored", "evil, 6.6.6.6,2.2.2.2", 1, "10.0.0.1:1", "2.2.2.2"},
		{"fewer entries than hops", "1.1.1.1", 2, "10.0.0.1:1", "10.0.0.1"},
		{"garbage at hop", "1.1.1.1, notanip", 1, "10.0.0.1:1", "10.0.0.1"},
		{"ipv6 in xff", "2001:db8::1", 1, "10.0.0.1:1", "2001:db8::1"},
		{"bracketed ipv6 with port in xff", "[2001:db8::2]:443", 1, "", "2001:db8::2"},
		{"bracketed ipv6 in xff", "[2001:db8::3]", 1, "", "2001:db8::3"},
		{"v4 with port in xff", "1.2.3.4:80", 1, "", "1.2.3.4"},
		{"ipv6 source with port", "", 0, "[2001:db8::9]:4444", "2001:db8::9"},
		{"ipv6 source bare", "", 0, "::1", "::1"},
		{"v4-mapped unmapped", "", 0, "[::ffff:1.2.3.4]:1", "1.2.3.4"},
		{"zone dropped", "", 0, "[fe80::1%eth0]:1", "fe80::1"},
		{"bare v4 source", "", 0, "192.168.1.1", "192.168.1.1"},
		{"bad source", "", 0, "unix:/tmp/sock", ""},
		{"empty", "", 0, "", ""},
		{"empty entries", ",,", 1, "10.0.0.1:1", "10.0.0.1"},
		{"huge header ignored", strings.Repeat("1.1.1.1,", 10000), 1, "10.0.0.1:1", "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, clientip.From(tc.xff, tc.hops, tc.src))
		})
	}
}

func FuzzFrom(f *testing.F) {
	f.Add("1.1.1.1, 2.2.2.2", 1, "10.0.0.1:80")
	f.Add("[::1]:5", 3, "[::1]")
	f.Fuzz(func(t *testing.T, xff string, hops int, src string) {
		_ = clientip.From(xff, hops%70, src)
	})
}
