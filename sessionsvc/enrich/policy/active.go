package policy

// RefusesLogins reports whether any rule of p may refuse a login from its
// answer: country allow or block lists, reputation blocks, a minimum score.
// (Failed-login lockouts are decided on the request and need no answer.)
func (p Policy) RefusesLogins() bool {
	return len(p.AllowedCountries) > 0 || len(p.BlockedCountries) > 0 ||
		p.BlockTor || p.BlockVPN || p.BlockProxy || p.BlockThreat || p.BlockDatacenter ||
		p.MinScore > 0
}
