package devproxy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
)

func TestNormalizePath(t *testing.T) {
	all := envoyconfig.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: envoyconfig.EscapedSlashesRedirect}
	none := envoyconfig.PathNormalization{EscapedSlashes: envoyconfig.EscapedSlashesKeep}
	escaped := func(e string) envoyconfig.PathNormalization {
		return envoyconfig.PathNormalization{Normalize: true, EscapedSlashes: e}
	}
	// Each group: a configuration, the action expected, then paths in and
	// out in pairs.
	for _, g := range []struct {
		cfg   envoyconfig.PathNormalization
		act   pathAction
		paths []string
	}{
		{all, pathContinue, []string{
			"/api/x", "/api/x",
			"/healthz/../api/x", "/api/x",
			"/healthz/%2e%2E/api/x?a=../b", "/api/x?a=../b",
			"/healthz/./x", "/healthz/x",
			"/../../etc", "/etc",
			"/a/b/..", "/a/",
			"/a/.", "/a/",
			"//api///x//", "/api/x/",
			"/healthz\\..\\api", "/api",
			"/%61pi/%7E%2a", "/api/~%2a",
			"/a b\"<>", "/a%20b%22%3C%3E",
		}},
		{all, pathRedirect, []string{"/healthz%2F..%2Fapi/x", "/api/x", "/api%5cx", "/api/x"}},
		{all, pathReject, []string{"/a\x00b", "/a\x00b"}},
		{escaped(envoyconfig.EscapedSlashesReject), pathReject, []string{"/healthz%2F..%2Fapi/x", "/healthz%2F..%2Fapi/x"}},
		{escaped(envoyconfig.EscapedSlashesForward), pathContinue, []string{"/healthz%2F..%2Fapi/x", "/api/x"}},
		{none, pathContinue, []string{"/healthz/../api//x", "/healthz/../api//x"}},
		{envoyconfig.PathNormalization{Normalize: true}, pathContinue, []string{"/a//b/../c", "/a//c"}},
	} {
		for i := 0; i < len(g.paths); i += 2 {
			in, want := g.paths[i], g.paths[i+1]
			got, act := normalizePath(in, g.cfg)
			assert.Equal(t, want, got, in)
			assert.Equal(t, g.act, act, in)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/a/../b", "/%2e%2E/x", "//a//", "/a%2Fb", "\\x"} {
		f.Add(s)
	}
	all := envoyconfig.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: envoyconfig.EscapedSlashesForward}
	f.Fuzz(func(t *testing.T, in string) {
		out, act := normalizePath(in, all)
		if act == pathReject {
			return
		}
		again, act2 := normalizePath(out, all)
		if act2 != pathContinue || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, act2)
		}
	})
}
