package decide

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
		c, n := pathByte(path, i)
		d, m := pathByte(want, j)
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

// pathByte is the byte at s[i], decoding a percent-encoded unreserved
// character (RFC 3986 section 2.3); n is how many bytes it took.
func pathByte(s string, i int) (byte, int) {
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

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
