package devproxy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
)

func TestNormalizePath(t *testing.T) {
	all := envoyconfig.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: envoyconfig.EscapedSlashesRedirect}
	none := envoyconfig.PathNormalization{EscapedSlashes: envoyconfig.EscapedSlashesKeep}
	for _, tc := range []struct {
		in   string
		cfg  envoyconfig.PathNormalization
		want string
		act  pathAction
	}{
		{"/api/x", all, "/api/x", pathContinue},
		{"/healthz/../api/x", all, "/api/x", pathContinue},
		{"/healthz/%2e%2E/api/x?a=../b", all, "/api/x?a=../b", pathContinue},
		{"/healthz/./x", all, "/healthz/x", pathContinue},
		{"/../../etc", all, "/etc", pathContinue},
		{"/a/b/..", all, "/a/", pathContinue},
		{"/a/.", all, "/a/", pathContinue},
		{"//api///x//", all, "/api/x/", pathContinue},
		{"/healthz\\..\\api", all, "/api", pathContinue},
		{"/%61pi/%7E%2a", all, "/api/~%2a", pathContinue},
		{"/a b\"<>", all, "/a%20b%22%3C%3E", pathContinue},
		{"/healthz%2F..%2Fapi/x", all, "/api/x", pathRedirect},
		{"/api%5cx", all, "/api/x", pathRedirect},
		{"/healthz%2F..%2Fapi/x", envoyconfig.PathNormalization{Normalize: true, EscapedSlashes: envoyconfig.EscapedSlashesReject}, "/healthz%2F..%2Fapi/x", pathReject},
		{"/healthz%2F..%2Fapi/x", envoyconfig.PathNormalization{Normalize: true, EscapedSlashes: envoyconfig.EscapedSlashesForward}, "/api/x", pathContinue},
		{"/healthz%2F..%2Fapi/x", all, "/api/x", pathRedirect},
		{"/healthz/../api//x", none, "/healthz/../api//x", pathContinue},
		{"/a//b/../c", envoyconfig.PathNormalization{Normalize: true}, "/a//c", pathContinue},
		{"/a\x00b", all, "/a\x00b", pathReject},
	} {
		got, act := normalizePath(tc.in, tc.cfg)
		assert.Equal(t, tc.want, got, tc.in)
		assert.Equal(t, tc.act, act, tc.in)
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
