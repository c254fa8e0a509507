package store

import (
	"encoding/json"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Rows keep a session's location and score reasons as JSON (json.Marshal
// of GeoLocation and of []string). A page of 1,000 sessions decoded them
// with json.Unmarshal in ~2 ms; parseGeo and parseReasons read the shape
// json.Marshal writes with gjson (no reflection) and leave anything else
// (escapes, null, another key or type) to json.Unmarshal, so the result is
// always json.Unmarshal's.

// parseGeo decodes a stored location; ok is false when s is not valid JSON
// for a GeoLocation (as json.Unmarshal's error).
func parseGeo(s string) (g GeoLocation, ok bool) {
	if g, ok := parseGeoFast(s); ok {
		return g, true
	}
	return g, json.Unmarshal([]byte(s), &g) == nil
}

// parseGeoFast reads an object of GeoLocation's keys, spelled as its json
// tags, with values of their types; false otherwise.
func parseGeoFast(s string) (g GeoLocation, ok bool) {
	if !plainJSON(s, '{') {
		return g, false
	}
	ok = true
	gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
		var str *string
		var num *float64
		switch k.Str {
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
		}
		switch {
		case str != nil && v.Type == gjson.String:
			*str = v.Str
		case num != nil && v.Type == gjson.Number && !math.IsInf(v.Num, 0):
			*num = v.Num // json.Unmarshal rejects a number out of float64's range
		default:
			ok = false
		}
		return ok
	})
	return g, ok
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

// parseReasonsFast reads an array of strings; false otherwise.
func parseReasonsFast(s string) (out []string, ok bool) {
	if !plainJSON(s, '[') {
		return nil, false
	}
	out, ok = []string{}, true
	gjson.Parse(s).ForEach(func(_, v gjson.Result) bool {
		ok = v.Type == gjson.String
		out = append(out, v.Str)
		return ok
	})
	return out, ok
}

// plainJSON reports that s is one valid JSON value opening with open, with
// no escapes and valid UTF-8: text whose strings gjson and json.Unmarshal
// read alike (json.Unmarshal replaces invalid UTF-8, and an escape spelling
// a key would match a field under another spelling).
func plainJSON(s string, open byte) bool {
	return s != "" && s[0] == open && strings.IndexByte(s, '\\') < 0 && utf8.ValidString(s) && gjson.Valid(s)
}
