// Package clientip finds the client's address for a request: from
// x-forwarded-for when proxies in front are trusted, else from the
// connection's source address.
package clientip

import (
	"net/netip"
	"strings"
)

// MaxHeaderLen bounds the x-forwarded-for value examined.
const MaxHeaderLen = 16 << 10

// From returns the client ip. With trustedHops > 0 it takes the
// trustedHops-th entry of x-forwarded-for counted from the right (1 = the
// rightmost, the address the nearest trusted proxy saw); when the header
// has fewer entries, or that entry is not an ip address, it falls back to
// sourceAddress. sourceAddress is Envoy's source.address ("ip:port",
// "[v6]:port", or a bare ip); its port and brackets are removed. It returns
// "" when nothing parses. IPv4-mapped IPv6 addresses are unmapped.
func From(xff string, trustedHops int, sourceAddress string) string {
	if trustedHops > 0 && xff != "" && len(xff) <= MaxHeaderLen {
		if ip, ok := hop(xff, trustedHops); ok {
			return ip
		}
	}
	return Source(sourceAddress)
}

func hop(xff string, n int) (string, bool) {
	for i := 1; ; i++ {
		var part string
		if j := strings.LastIndexByte(xff, ','); j >= 0 {
			part, xff = xff[j+1:], xff[:j]
		} else {
			part, xff = xff, ""
		}
		if i == n {
			return parse(strings.TrimSpace(part))
		}
		if xff == "" {
			return "", false
		}
	}
}

// Source normalises an Envoy source.address ("1.2.3.4:5678",
// "[::1]:5678", "1.2.3.4", "::1") to a bare ip; "" when it does not parse.
func Source(addr string) string {
	addr = strings.TrimSpace(addr)
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().WithZone("").String()
	}
	ip, _ := parse(addr)
	return ip
}

// parse accepts a bare ip, "[v6]", "[v6]:port" or "v4:port" as found in
// x-forwarded-for.
func parse(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("").String(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("").String(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone("").String(), true
		}
	}
	return "", false
}
