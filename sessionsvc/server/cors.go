package server

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// CORS of the user and admin APIs, as Strapi's default strapi::cors
// middleware (@koa/cors with Strapi's defaults: origin '*', these methods
// and headers, maxAge one year) but without Access-Control-Allow-Credentials:
// Strapi's default reflects any Origin with credentials allowed, which
// would let any site read a user's sessions through the token cookie the
// user API also accepts. Cross-origin callers send their bearer token.
const (
	corsAllowMethods = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
	corsAllowHeaders = "Content-Type,Authorization,Origin,Accept"
	corsMaxAge       = "31536000"
	// corsExposeHeaders are the non-safelisted headers our answers carry
	// that a browser client needs (429's wait, a refused token's reason).
	corsExposeHeaders = "Retry-After,X-Session-Terminated-Reason"
)

// corsPrefixes are the paths CORS applies to: the user and admin APIs
// (not the internal API, the dashboard or the operational endpoints).
var corsPrefixes = []string{"/api/magic-sessionmanager", "/magic-sessionmanager"}

// ParseCORSOrigins reads CORS_ORIGINS: "*" (any origin), a comma-separated
// list of origins (scheme://host[:port]), or "none" or "" (no CORS).
func ParseCORSOrigins(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "none") {
		return nil, nil
	}
	var out []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	p, err := newCORSPolicy(out)
	if err != nil || p == nil {
		return nil, err
	}
	if p.any {
		return []string{"*"}, nil
	}
	return slices.Sorted(maps.Keys(p.origins)), nil
}

// normalizeOrigin checks that o is an origin (scheme://host[:port],
// nothing more) and writes it as browsers send Origin: lower case, without
// the scheme's default port.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", o, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("origin %q: want http:// or https://", o)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port], no path, query or user", o)
	}
	host := strings.ToLower(u.Host)
	// Browsers leave the scheme's default port out of Origin.
	if u.Scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return u.Scheme + "://" + host, nil
}

// corsPolicy is Config.CORSOrigins ready to use.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

// newCORSPolicy checks and normalises origins; nil when there are none.
func newCORSPolicy(origins []string) (*corsPolicy, error) {
	if len(origins) == 0 {
		return nil, nil
	}
	p := &corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		p.origins[norm] = true
	}
	if p.any && len(p.origins) > 0 {
		return nil, fmt.Errorf(`"*" allows every origin: give it alone, not with %d others`, len(p.origins))
	}
	return p, nil
}

// allowOrigin is the Access-Control-Allow-Origin for a request's Origin,
// "" when it is not allowed.
func (p *corsPolicy) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case p.any:
		return "*"
	case p.origins[strings.ToLower(origin)]:
		return origin
	}
	return ""
}

func corsPath(p string) bool {
	p = path.Clean(p)
	for _, pre := range corsPrefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// withCORS answers preflights and sets the CORS headers on the user and
// admin APIs' answers.
func (s *Server) withCORS(p *corsPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !corsPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		if !p.any {
			// The answer depends on Origin: caches must keep one per origin.
			h.Add("Vary", "Origin")
		}
		origin := r.Header.Get("Origin")
		allow := p.allowOrigin(origin)
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			if allow == "" {
				writeError(w, r, s.log, &apiError{Status: http.StatusForbidden,
					Message: "Origin " + origin + " is not allowed (CORS_ORIGINS)"})
				return
			}
			h.Set("Access-Control-Allow-Origin", allow)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allow != "" {
			h.Set("Access-Control-Allow-Origin", allow)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}
