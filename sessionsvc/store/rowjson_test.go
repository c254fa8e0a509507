package store

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

var geoCases = []string{
	`{}`,
	`{"country":"Germany","country_code":"DE","city":"Berlin","region":"BE","latitude":52.52,"longitude":13.405,"timezone":"Europe/Berlin"}`,
	`{"country":"Côte d'Ivoire","country_code":"CI"}`,
	`{"country":"a\"b","city":"x\u00e9"}`,
	`{"latitude":-1.5e-3,"longitude":0}`,
	`{"latitude":1E+2}`,
	`{"latitude":01}`,
	`{"latitude":+1}`,
	`{"latitude":.5}`,
	`{"latitude":Inf}`,
	`{"latitude":0x10}`,
	`{"latitude":1_0}`,
	`{"latitude":null,"city":null}`,
	`{"latitude":"1"}`,
	`{"city":1}`,
	`{"Country":"Germany"}`,
	`{"country":"Germany","other":[1,2]}`,
	`{ "country" : "Germany" }`,
	`{"country":"Germany",}`,
	`{"country":"Germany"`,
	`{"country":"Ger` + "\n" + `many"}`,
	"{\"country\":\"\xff\"}",
	"{\"country\":\"\u00f4\x03\"}",
	`{"country":"a","country":"b"}`,
	`{"country":"x"}{"city":"y"}`,
	`{"city":"","region":""}`,
	`[]`,
	`null`,
	`"x"`,
	``,
}

// TestParseGeo: parseGeo decodes a stored location as json.Unmarshal does,
// whatever the text (the fast path and the fallback).
func TestParseGeo(t *testing.T) {
	for _, c := range geoCases {
		var want GeoLocation
		wantOK := json.Unmarshal([]byte(c), &want) == nil
		got, ok := parseGeo(c)
		assert.Equal(t, wantOK, ok, "%q", c)
		if wantOK {
			assert.Equal(t, want, got, "%q", c)
		}
	}
	_, fast := parseGeoFast(geoCases[1])
	assert.True(t, fast, "json.Marshal's own text takes the fast path")
}

var reasonCases = []string{
	`[]`, `["new device"]`, `["new device","new country: DE","impossible travel"]`, `["a\"b"]`, `["é"]`,
	`[ "a" ]`, `["a",]`, `["a"`, `[1,"a"]`, `[null]`, `null`, `{}`, `["a""b"]`, "[\"\xff\"]", `["a"],["b"]`,
}

func TestParseReasons(t *testing.T) {
	for _, c := range reasonCases {
		var want []string
		_ = json.Unmarshal([]byte(c), &want)
		assert.Equal(t, want, parseReasons(c), "%q", c)
	}
}

func FuzzParseGeo(f *testing.F) {
	for _, c := range geoCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want GeoLocation
		wantOK := json.Unmarshal([]byte(s), &want) == nil
		got, ok := parseGeo(s)
		if ok != wantOK || ok && got != want {
			t.Fatalf("%q: got %+v %v, json.Unmarshal %+v %v", s, got, ok, want, wantOK)
		}
	})
}

func FuzzParseReasons(f *testing.F) {
	for _, c := range reasonCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		_ = json.Unmarshal([]byte(s), &want)
		assert.Equal(t, want, parseReasons(s), "%q", s)
	})
}
