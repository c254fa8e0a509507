package host

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// RequestPairs turns an incoming HTTP request into proxy-wasm request
// headers as Envoy presents them: :authority, :path, :method, :scheme first,
// then the other headers with lower-case names (sorted, for determinism).
func RequestPairs(r *http.Request) [][2]string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.URL.RequestURI()
	pairs := [][2]string{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", scheme}}
	return append(pairs, headerPairs(r.Header)...)
}

// ResponsePairs turns a status and response headers into proxy-wasm
// response headers (:status first).
func ResponsePairs(status int, h http.Header) [][2]string {
	return append([][2]string{{":status", strconv.Itoa(status)}}, headerPairs(h)...)
}

func headerPairs(h http.Header) [][2]string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][2]string
	for _, k := range keys {
		lk := strings.ToLower(k)
		for _, v := range h[k] {
			out = append(out, [2]string{lk, v})
		}
	}
	return out
}

// SplitPairs separates pseudo-headers (":path" ...) from regular headers,
// e.g. to forward a request the guest modified.
func SplitPairs(pairs [][2]string) (pseudo map[string]string, header http.Header) {
	pseudo = map[string]string{}
	header = http.Header{}
	for _, p := range pairs {
		if strings.HasPrefix(p[0], ":") {
			if _, ok := pseudo[p[0]]; !ok {
				pseudo[p[0]] = p[1]
			}
			continue
		}
		header.Add(p[0], p[1])
	}
	return pseudo, header
}
