package decide

import "testing"

func TestRoutePathMatches(t *testing.T) {
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
		if got := routePathMatches(tc.path, want); got != tc.ok {
			t.Errorf("routePathMatches(%q) = %v, want %v", tc.path, got, tc.ok)
		}
	}
	if !routePathMatches("/login/", "/login") || !routePathMatches("/login", "/login/") {
		t.Error("a trailing slash on either side")
	}
}

func FuzzRoutePathMatches(f *testing.F) {
	f.Add("/api/auth/local")
	f.Add("/%41pi//auth/local/")
	f.Fuzz(func(t *testing.T, p string) {
		_ = routePathMatches(p, "/api/auth/local") // never panics
		if p != "" && p[0] == '/' && !routePathMatches(p, p) {
			t.Fatalf("%q does not match itself", p)
		}
	})
}
