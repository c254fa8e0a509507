package decide_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSkipPathsMatchNormalSegmentsOnly(t *testing.T) {
	e := engine(t, `{"skip_paths":["/healthz","/public/"]}`)
	for _, tc := range []struct {
		path string
		skip bool
	}{
		{"/healthz", true},
		{"/healthz/", true},
		{"/healthz/live", true},
		{"/healthz?x=../../api", true},
		{"/healthz/live;v=1", true},
		{"/public/app.js", true},
		{"/healthzX", false},
		{"/healthz.json", false},
		{"/api/x", false},
		{"/public", false},
		// Not in normal form: never skipped.
		{"/healthz/../api/x", false},
		{"/healthz/./x", false},
		{"/healthz/..", false},
		{"/healthz/..;/api/x", false},
		{"/healthz/%2e%2e/api/x", false},
		{"/healthz/%2E./api", false},
		{"/healthz%2F..%2Fapi/x", false},
		{"/healthz/%2f..%2fapi", false},
		{"/healthz\\..\\api", false},
		{"/healthz/%5C../api", false},
		{"/healthz//../api", false},
		{"/public//x", false},
		{"/healthz/%00", false},
		{"/healthz/%", false},
		{"/healthz/%2", false},
	} {
		assert.Equal(t, tc.skip, e.Skip(tc.path), tc.path)
	}
}

func FuzzSkipNeverDotSegments(f *testing.F) {
	for _, s := range []string{"/healthz/../x", "/healthz/%2e%2e/x", "/healthz/a"} {
		f.Add(s)
	}
	e := engine(f, `{"skip_paths":["/healthz"]}`)
	f.Fuzz(func(t *testing.T, p string) {
		if !e.Skip(p) {
			return
		}
		path := p
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		if strings.Contains(path, "//") {
			t.Fatalf("skipped %q (holds an empty segment)", p)
		}
		for _, bad := range []string{"/../", "/./", "\\", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C"} {
			if strings.Contains(path+"/", bad) {
				t.Fatalf("skipped %q (holds %q)", p, bad)
			}
		}
	})
}
