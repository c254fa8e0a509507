package decide

import "github.com/meshsession/meshsession/plugin/core/config"

// routePathMatches reports whether path names the observed route want
// (login, refresh, logout) the way common app routers resolve it, so that a
// variant reaching the app's handler cannot skip the filter's check or
// report: ASCII case ignored (Koa's and
// Express's routers are case-insensitive by default), one trailing slash
// ignored (their non-strict routing), repeated slashes merged, and
// percent-encoded unreserved characters ("%6c" for "l") decoded. Matching a
// variant the app does not route there only adds a check to a request the
// app will refuse anyway. It does not allocate.
func routePathMatches(path, want string) bool {
	i, j := 0, 0
	for {
		// Merge repeated slashes on both sides.
		for i > 0 && i < len(path) && path[i] == '/' && path[i-1] == '/' {
			i++
		}
		for j > 0 && j < len(want) && want[j] == '/' && want[j-1] == '/' {
			j++
		}
		if i == len(path) || j == len(want) {
			break
		}
		c, n := config.PathByte(path, i)
		d, m := config.PathByte(want, j)
		if lower(c) != lower(d) {
			return false
		}
		i, j = i+n, j+m
	}
	return allSlashes(path[i:]) && allSlashes(want[j:])
}

// allSlashes: "" or only '/' (a trailing slash, repeated ones merged).
func allSlashes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '/' {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
