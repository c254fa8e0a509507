package enrich

// LoginPolicyActive reports whether the current login policy has any rule
// that may refuse a login (policy.Policy.RefusesLogins). sessionsvc's
// internal API uses it for login answers the proxy could not read.
func (s *Service) LoginPolicyActive() bool { return s.policy().RefusesLogins() }
