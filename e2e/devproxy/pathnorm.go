package devproxy

import (
	"strings"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
)

// pathAction is what the connection manager does with a request after
// normalising its path (Envoy's ConnectionManagerUtility::NormalizePathAction,
// source/common/http/conn_manager_utility.cc maybeNormalizePath).
type pathAction uint8

const (
	pathContinue pathAction = iota
	// pathRedirect: 307 with location set to the normalised path
	// (UNESCAPE_AND_REDIRECT found escaped slashes).
	pathRedirect
	// pathReject: 400 (REJECT_REQUEST found escaped slashes, or the path
	// cannot be canonicalised).
	pathReject
)

// normalizePath applies the HCM's path settings to a :path, in Envoy's
// order: escaped slashes first, then RFC 3986 normalisation
// (PathUtil::canonicalPath), then merging slashes after it
// (PathUtil::mergeSlashes, "to catch potential edge cases with percent
// encoding"). Only the path part is changed; the query is kept as is.
func normalizePath(raw string, cfg envoyconfig.PathNormalization) (string, pathAction) {
	path, query := raw, ""
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		path, query = raw[:i], raw[i:]
	}
	action := pathContinue
	if cfg.EscapedSlashes != "" && cfg.EscapedSlashes != envoyconfig.EscapedSlashesKeep {
		if un, changed := unescapeSlashes(path); changed {
			switch cfg.EscapedSlashes {
			case envoyconfig.EscapedSlashesReject:
				return raw, pathReject
			case envoyconfig.EscapedSlashesRedirect:
				action = pathRedirect
			}
			path = un
		}
	}
	if cfg.Normalize {
		canon, ok := canonicalPath(path)
		if !ok {
			return raw, pathReject
		}
		path = canon
	}
	if cfg.MergeSlashes {
		path = mergeSlashes(path)
	}
	return path + query, action
}

// unescapeSlashes is PathUtil::unescapeSlashes: %2F and %2f become "/",
// %5C and %5c become "\".
func unescapeSlashes(path string) (string, bool) {
	if !strings.Contains(path, "%") {
		return path, false
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && i+2 < len(path) {
			switch strings.ToUpper(path[i+1 : i+3]) {
			case "2F":
				b.WriteByte('/')
				i += 2
				changed = true
				continue
			case "5C":
				b.WriteByte('\\')
				i += 2
				changed = true
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String(), changed
}

// mergeSlashes is PathUtil::mergeSlashes: a path holding "//" is rebuilt
// from its non-empty segments, keeping a leading and a trailing slash.
func mergeSlashes(path string) string {
	if !strings.Contains(path, "//") {
		return path
	}
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	prefix, suffix := "", ""
	if strings.HasPrefix(path, "/") {
		prefix = "/"
	}
	if strings.HasSuffix(path, "/") {
		suffix = "/"
	}
	return prefix + strings.Join(segs, "/") + suffix
}

// canonicalPath is PathUtil::canonicalPath, which runs Chromium's
// url::CanonicalizePath (url/url_canon_path.cc) over the path. The
// behaviours reproduced: "\" is a separator like "/"; "." and ".."
// segments, also written %2e (either case), are resolved and never climb
// above the root; escapes of unreserved characters (ALPHA DIGIT - . _ ~)
// are decoded, other escapes are kept; bytes that may not appear in a path
// (controls, space, " < > ` { } and non-ASCII) are percent-encoded. A path
// holding a NUL is refused.
func canonicalPath(path string) (string, bool) {
	if strings.IndexByte(path, 0) >= 0 {
		return "", false
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "\\") {
		path = "/" + path
	}
	segs := splitSlashes(path[1:]) // empty segments stay: merge_slashes is separate
	out := make([]string, 0, len(segs))
	trailing := false
	for i, seg := range segs {
		last := i == len(segs)-1
		switch dotKind(seg) {
		case 1:
			if last {
				trailing = true
			}
			continue
		case 2:
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				trailing = true
			}
			continue
		}
		out = append(out, canonSegment(seg))
	}
	p := "/" + strings.Join(out, "/")
	if trailing && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p, true
}

// splitSlashes splits at "/" and "\", keeping empty segments.
func splitSlashes(p string) []string {
	var segs []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '/' || p[i] == '\\' {
			segs = append(segs, p[start:i])
			start = i + 1
		}
	}
	return append(segs, p[start:])
}

// dotKind is 1 for a "." segment, 2 for "..", 0 otherwise; a dot may be
// written %2e or %2E.
func dotKind(seg string) int {
	n := 0
	for i := 0; i < len(seg); {
		switch {
		case seg[i] == '.':
			i++
		case len(seg)-i >= 3 && seg[i] == '%' && seg[i+1] == '2' && (seg[i+2] == 'e' || seg[i+2] == 'E'):
			i += 3
		default:
			return 0
		}
		n++
		if n > 2 {
			return 0
		}
	}
	return n
}

func canonSegment(seg string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' && len(seg)-i >= 3 && isHex(seg[i+1]) && isHex(seg[i+2]) {
			v := unhex(seg[i+1])<<4 | unhex(seg[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteString(seg[i : i+3])
			}
			i += 2
			continue
		}
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\"<>`{}", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
