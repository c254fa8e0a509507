package store

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rows keep a session's location and score reasons as JSON (json.Marshal
// of GeoLocation and of []string). A page of 1,000 sessions decoded them
// with json.Unmarshal in ~2 ms; parseGeo and parseReasons read the shape
// json.Marshal writes directly and leave anything else (escapes, spaces,
// null, another key) to json.Unmarshal, so the result is always its.

// parseGeo decodes a stored location; ok is false when s is not valid JSON
// for a GeoLocation (as json.Unmarshal's error).
func parseGeo(s string) (g GeoLocation, ok bool) {
	if g, ok := parseGeoFast(s); ok {
		return g, true
	}
	return g, json.Unmarshal([]byte(s), &g) == nil
}

// parseGeoFast reads {"key":value,…} with no spaces, no escapes, only
// GeoLocation's keys and values of their types; false otherwise.
func parseGeoFast(s string) (g GeoLocation, ok bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.IndexByte(s, '\\') >= 0 {
		return g, false
	}
	rest := s[1 : len(s)-1]
	for rest != "" {
		key, r, ok := cutString(rest)
		if !ok || r == "" || r[0] != ':' {
			return g, false
		}
		r = r[1:]
		var str *string
		var num *float64
		switch key {
		case "country":
			str = &g.Country
		case "country_code":
			str = &g.CountryCode
		case "city":
			str = &g.City
		case "region":
			str = &g.Region
		case "timezone":
			str = &g.Timezone
		case "latitude":
			num = &g.Latitude
		case "longitude":
			num = &g.Longitude
		default:
			return g, false
		}
		if str != nil {
			if *str, r, ok = cutString(r); !ok {
				return g, false
			}
		} else {
			end := strings.IndexByte(r, ',')
			if end < 0 {
				end = len(r)
			}
			f, err := strconv.ParseFloat(r[:end], 64)
			if err != nil || !jsonNumber(r[:end]) {
				return g, false
			}
			*num, r = f, r[end:]
		}
		if rest, ok = nextMember(r); !ok {
			return g, false
		}
	}
	return g, true
}

// parseReasons decodes stored score reasons (what json.Unmarshal leaves
// in a nil slice, error or not).
func parseReasons(s string) []string {
	if out, ok := parseReasonsFast(s); ok {
		return out
	}
	var out []string
	_ = json.Unmarshal([]byte(s), &out)
	return out
}

// parseReasonsFast reads ["a","b",…] with no spaces and no escapes.
func parseReasonsFast(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	rest := s[1 : len(s)-1]
	out := []string{}
	for rest != "" {
		v, r, ok := cutString(rest)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if rest, ok = nextMember(r); !ok {
			return nil, false
		}
	}
	return out, true
}

// nextMember skips the comma between two members of an object or array:
// r is what follows a member; false when it is neither the end nor a comma
// before another member.
func nextMember(r string) (string, bool) {
	if r == "" {
		return "", true
	}
	if r[0] != ',' || len(r) == 1 {
		return r, false
	}
	return r[1:], true
}

// cutString reads a JSON string without escapes at the start of s: its
// value and what follows it. Control characters and invalid UTF-8 (which
// json.Unmarshal rejects or replaces) are left to it.
func cutString(s string) (v, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", s, false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", s, false
	}
	v = s[1 : 1+end]
	ascii := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 {
			return "", s, false
		} else if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(v) {
		return "", s, false
	}
	return v, s[2+end:], true
}

// jsonNumber reports that n is a JSON number (ParseFloat also takes "Inf",
// "0x1p3", "1_0", "+1", ".5").
func jsonNumber(n string) bool {
	return n != "" && (n[0] == '-' || n[0] >= '0' && n[0] <= '9') && json.Valid([]byte(n))
}
