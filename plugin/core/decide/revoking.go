package decide

import "github.com/meshsession/meshsession/plugin/core/config"

// RevokingRoutes are the routes whose 2xx answer ends sessions
// (revoking_routes): the filter holds such an answer until every worker of
// its proxy enforces what it revoked.
type RevokingRoutes []config.RevokingRoute

// NewRevokingRoutes parses a validated revoking_routes list.
func NewRevokingRoutes(list []string) (RevokingRoutes, error) {
	out := make(RevokingRoutes, 0, len(list))
	for _, s := range list {
		r, err := config.ParseRevokingRoute(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Match reports whether method and path (a query string is ignored) are
// on one of the routes.
func (rs RevokingRoutes) Match(method, path string) bool {
	stripped := false
	for i := range rs {
		r := &rs[i] // not a copy: a memory.copy in Wasm (see the package comment)
		if method != r.Method {
			continue // most requests: no path work at all
		}
		if !stripped {
			path, stripped = stripQuery(path), true
		}
		if r.Match(method, path) {
			return true
		}
	}
	return false
}
