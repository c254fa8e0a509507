package decide

import "testing"

func TestLoginPathMatches(t *testing.T) {
	const want = "/api/auth/local"
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/api/auth/local", true},
		{"/api/auth/local/", true},
		{"/API/Auth/LOCAL", true},
		{"/api/auth/loca%6c", true},
		{"/api/auth/loca%6C", true},
		{"/api/%61uth/local", true},
		{"//api//auth/local", true},
		{"/api/auth/local//", true},
		{"/api/auth/locals", false},
		{"/api/auth/local/x", false},
		{"/api/auth/loca", false},
		{"/api/auth/local%2f", false}, // an encoded slash is not a separator here
		{"/api/auth/loca%", false},
		{"/api/auth/loca%zz", false},
		{"/api/auth", false},
		{"", false},
	} {
		if got := loginPathMatches(tc.path, want); got != tc.ok {
			t.Errorf("loginPathMatches(%q) = %v, want %v", tc.path, got, tc.ok)
		}
	}
	if !loginPathMatches("/login/", "/login") || !loginPathMatches("/login", "/login/") {
		t.Error("a trailing slash on either side")
	}
}

func FuzzLoginPathMatches(f *testing.F) {
	f.Add("/api/auth/local")
	f.Add("/%41pi//auth/local/")
	f.Fuzz(func(t *testing.T, p string) {
		_ = loginPathMatches(p, "/api/auth/local") // never panics
		if p != "" && p[0] == '/' && !loginPathMatches(p, p) {
			t.Fatalf("%q does not match itself", p)
		}
	})
}
