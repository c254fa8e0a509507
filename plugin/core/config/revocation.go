package config

import (
	"fmt"
	"strings"
	"time"
)

// DefaultStartupHold is how long a worker without a revocation state yet
// holds token-bearing requests, waiting for its first sync (startup_hold).
const DefaultStartupHold = time.Second

// MaxStartupHold bounds startup_hold.
const MaxStartupHold = time.Minute

// DefaultPendingLogouts is how many logouts a proxy enforces by itself
// while their report to sessionsvc is pending (pending_logouts): a logout
// sessionsvc could not record is refused on every worker of the proxy at
// once and reported when sessionsvc is back. Past the bound a new one is
// not kept (the oldest are), and the filter logs and counts it.
const DefaultPendingLogouts = 1024

// MaxPendingLogouts bounds pending_logouts (the list is copied whole
// between the workers of a proxy).
const MaxPendingLogouts = 65536

// MaxRevokingRoutes bounds revoking_routes.
const MaxRevokingRoutes = 32

// DefaultRevokingRoutes are sessionsvc's user-API routes that end sessions
// (revoking_routes): a 2xx answer to one of them, routed through the
// proxy, is held until every worker of the proxy enforces what it revoked.
func DefaultRevokingRoutes() []string {
	const u = "/api/magic-sessionmanager"
	return []string{
		"POST " + u + "/logout",
		"POST " + u + "/logout-all",
		"POST " + u + "/logout-others",
		"DELETE " + u + "/my-sessions/*",
	}
}

// RevokingRoute is one parsed entry of revoking_routes: "METHOD /path",
// where a last segment "*" stands for exactly one non-empty segment.
type RevokingRoute struct {
	Method  string
	Path    string // without the "/*"
	OneMore bool   // the path ends in "/*"
}

// ParseRevokingRoute parses "METHOD /path[/*]".
func ParseRevokingRoute(s string) (RevokingRoute, error) {
	method, path, ok := strings.Cut(s, " ")
	if !ok || method == "" || !isToken(method) || strings.ToUpper(method) != method {
		return RevokingRoute{}, fmt.Errorf(`must be "METHOD /path" with an upper-case method, got %q`, s)
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t?#") {
		return RevokingRoute{}, fmt.Errorf(`path must start with "/" and hold no space, "?" or "#", got %q`, path)
	}
	r := RevokingRoute{Method: method, Path: path}
	if strings.HasSuffix(path, "/*") {
		r.Path, r.OneMore = strings.TrimSuffix(path, "/*"), true
	}
	if strings.Contains(r.Path, "*") || r.Path == "" {
		return RevokingRoute{}, fmt.Errorf(`"*" may only be the whole last segment, got %q`, path)
	}
	return r, nil
}

// Match reports whether method and path (query already stripped) are on r.
// The path is compared as sessionsvc's router (Go's ServeMux) compares it:
// case and slashes as they are, percent-encoded unreserved characters
// decoded ("logout-%61ll" is logout-all there, so it is here). It does not
// allocate.
func (r *RevokingRoute) Match(method, path string) bool {
	if method != r.Method {
		return false
	}
	i := 0
	for j := 0; j < len(r.Path); j++ {
		if i == len(path) {
			return false
		}
		c, n := PathByte(path, i)
		if c != r.Path[j] {
			return false
		}
		i += n
	}
	rest := path[i:]
	if !r.OneMore {
		return rest == ""
	}
	return len(rest) > 1 && rest[0] == '/' && !strings.Contains(rest[1:], "/")
}

// PathByte is the byte at s[i], decoding a percent-encoded unreserved
// character (RFC 3986 section 2.3); n is how many bytes it took.
func PathByte(s string, i int) (c byte, n int) {
	if s[i] == '%' && i+2 < len(s) {
		if h, ok := unhex(s[i+1]); ok {
			if l, ok := unhex(s[i+2]); ok {
				c := h<<4 | l
				if isUnreserved(c) {
					return c, 3
				}
			}
		}
	}
	return s[i], 1
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func (c *Config) validateRevocationTiming() error {
	if c.StartupHold > MaxStartupHold {
		return fieldErr("startup_hold", "must be at most %s, got %s", MaxStartupHold, c.StartupHold)
	}
	if c.PendingLogouts < 1 || c.PendingLogouts > MaxPendingLogouts {
		return fieldErr("pending_logouts", "must be between 1 and %d, got %d", MaxPendingLogouts, c.PendingLogouts)
	}
	if len(c.RevokingRoutes) > MaxRevokingRoutes {
		return fieldErr("revoking_routes", "at most %d routes, got %d", MaxRevokingRoutes, len(c.RevokingRoutes))
	}
	for i, s := range c.RevokingRoutes {
		if _, err := ParseRevokingRoute(s); err != nil {
			return fieldErr(fmt.Sprintf("revoking_routes[%d]", i), "%v", err)
		}
	}
	return nil
}
