package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRefusesLogins(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(p *Policy)
		want bool
	}{
		{"default", func(*Policy) {}, false},
		{"allowed countries", func(p *Policy) { p.AllowedCountries = []string{"DE"} }, true},
		{"blocked countries", func(p *Policy) { p.BlockedCountries = []string{"RU"} }, true},
		{"tor", func(p *Policy) { p.BlockTor = true }, true},
		{"vpn", func(p *Policy) { p.BlockVPN = true }, true},
		{"proxy", func(p *Policy) { p.BlockProxy = true }, true},
		{"threat", func(p *Policy) { p.BlockThreat = true }, true},
		{"datacenter", func(p *Policy) { p.BlockDatacenter = true }, true},
		{"min score", func(p *Policy) { p.MinScore = 40 }, true},
		{"lockout only", func(p *Policy) { p.Lockout.MaxFailures = 5; p.Lockout.PerIP = true }, false},
	} {
		p := Default()
		tc.set(&p)
		assert.Equal(t, tc.want, p.RefusesLogins(), tc.name)
	}
}
