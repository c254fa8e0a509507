package lockout

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeIdentifier(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Alice@Example.COM\t", "alice@example.com"},
		{"", ""},
		{"   ", ""},
		{"ÄLICE", "älice"},
		{"b\xffob", "b\uFFFDob"},
		{`["Alice"]`, `["alice"]`},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, NormalizeIdentifier(tc.in), "%q", tc.in)
	}
	a := NormalizeIdentifier(strings.Repeat("é", 500) + "a")
	b := NormalizeIdentifier(strings.Repeat("é", 500) + "b")
	assert.LessOrEqual(t, len(a), MaxIdentifierLen)
	assert.True(t, utf8.ValidString(a))
	assert.NotEqual(t, a, b, "distinct huge identifiers stay distinct")
	assert.Equal(t, a, NormalizeIdentifier(strings.Repeat("É", 500)+"A"), "case-folded before the digest")
}

func FuzzNormalizeIdentifier(f *testing.F) {
	f.Add("Alice")
	f.Add(strings.Repeat("x", 300))
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeIdentifier(s)
		if len(n) > MaxIdentifierLen || !utf8.ValidString(n) {
			t.Fatalf("%q -> %q", s, n)
		}
		if NormalizeIdentifier(n) != n && len(n) < MaxIdentifierLen-30 {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, NormalizeIdentifier(n))
		}
	})
}

func TestSubjects(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":            "ip:203.0.113.7",
		" 203.0.113.7 ":          "ip:203.0.113.7",
		"::ffff:203.0.113.7":     "ip:203.0.113.7",
		"2001:db8:aa:bb::1":      "ip:2001:db8:aa:bb::/64",
		"2001:db8:aa:bb:ffff::9": "ip:2001:db8:aa:bb::/64",
		"fe80::1%eth0":           "ip:fe80::/64",
	} {
		s, ok := IPSubject(in)
		require.True(t, ok, in)
		assert.Equal(t, want, s.Scope, in)
	}
	for _, bad := range []string{"", "nope", "1.2.3.4/24", "1.2.3.4:80"} {
		_, ok := IPSubject(bad)
		assert.False(t, ok, bad)
	}
	for _, tc := range []struct{ kind, value, scope string }{
		{"identifier", " Bob ", "ident:bob"},
		{"ip", "2001:db8::5", "ip:2001:db8::/64"},
		{"ip", "2001:db8::/64", "ip:2001:db8::/64"},
		{"scope", "ident:Bob", "ident:bob"},
		{"", "ip:203.0.113.7", "ip:203.0.113.7"},
	} {
		s, err := ParseSubject(tc.kind, tc.value)
		require.NoError(t, err, tc)
		assert.Equal(t, tc.scope, s.Scope, tc)
	}
	for _, tc := range [][2]string{{"user", "x"}, {"ip", "x"}, {"ip", "2001:db8::/48"}, {"scope", "user:x"}} {
		_, err := ParseSubject(tc[0], tc[1])
		assert.Error(t, err, tc)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]int{900 * time.Second: 900, 1500 * time.Millisecond: 2, time.Millisecond: 1, 0: 1, -time.Second: 1} {
		assert.Equal(t, want, Lock{Locked: true, Until: now.Add(d)}.RetryAfter(now), d)
	}
}
