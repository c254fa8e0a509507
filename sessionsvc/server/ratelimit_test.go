package server

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRateLimitPerPath: as upstream (middlewares/rate-limit.js keys
// `${ctx.path}::u:<id>`), each concrete path has its own budget per user,
// so a user ends more than 10 sessions one by one; the same path, however
// spelled, shares one budget.
func TestRateLimitPerPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		// paths are the DELETE paths sent in order (under …/my-sessions/),
		// {n} standing for the n-th of alice's other sessions.
		paths []string
		// want is the status of the last request.
		want int
	}{
		{name: "12 sessions ended one by one", paths: seq("{%d}", 12), want: 200},
		{name: "one path 11 times", paths: repeat("{0}", 11), want: 429},
		{name: "one path, escaped spellings", paths: append(repeat("{0}", 10), "{0}%"), want: 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tok, _ := e.signIn("alice", "a-current")
			var others []string
			for i := 0; i < 12; i++ {
				_, id := e.signIn("alice", fmt.Sprintf("a-%d", i))
				others = append(others, id)
			}
			var last resp
			for i, p := range tc.paths {
				escape := strings.HasSuffix(p, "%")
				var n int
				_, err := fmt.Sscanf(strings.TrimSuffix(p, "%"), "{%d}", &n)
				require.NoError(t, err)
				id := others[n]
				if escape { // the same path with its first character percent-encoded
					id = fmt.Sprintf("%%%02X", id[0]) + id[1:]
				}
				last = e.user(tok, "DELETE", ua+"/my-sessions/"+id, nil)
				if i < len(tc.paths)-1 {
					require.Equal(t, 200, last.status, "request %d: %s", i+1, last.raw)
				}
			}
			require.Equal(t, tc.want, last.status, string(last.raw))
			if tc.want == 429 {
				assert.Equal(t, "60", last.header.Get("Retry-After"))
			}
		})
	}
}

// TestRateLimitOtherUsers: a user's spent budget on a path is theirs only.
func TestRateLimitOtherUsers(t *testing.T) {
	e := newEnv(t)
	alice := token(t, "alice", "", nil)
	bob := token(t, "bob", "", nil)
	for i := 0; i < 10; i++ {
		require.Equal(t, 200, e.user(alice, "POST", ua+"/logout-all", nil).status)
	}
	assert.Equal(t, 429, e.user(alice, "POST", ua+"/logout-all", nil).status)
	assert.Equal(t, 200, e.user(bob, "POST", ua+"/logout-all", nil).status)
	assert.Equal(t, 200, e.user(alice, "POST", ua+"/logout-others", nil).status, "another path")
}

func seq(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestRateLimitKey(t *testing.T) {
	long := "/api/magic-sessionmanager/my-sessions/" + strings.Repeat("x", 10_000)
	for _, tc := range []struct {
		name, path, user, want string
	}{
		{"upstream's form", "/api/magic-sessionmanager/my-sessions/sess_1", "7", "/api/magic-sessionmanager/my-sessions/sess_1::u:7"},
		{"unescaped", "/api/magic-sessionmanager/my-sessions/%73ess_1", "7", "/api/magic-sessionmanager/my-sessions/sess_1::u:7"},
		{"long path hashed", long, "7", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rateLimitKey(httptest.NewRequest("DELETE", tc.path, nil), tc.user)
			if tc.want != "" {
				assert.Equal(t, tc.want, got)
				return
			}
			assert.LessOrEqual(t, len(got), maxBucketKeyLen)
			assert.NotEqual(t, got, rateLimitKey(httptest.NewRequest("DELETE", long+"y", nil), tc.user), "distinct paths, distinct keys")
			assert.Equal(t, got, rateLimitKey(httptest.NewRequest("DELETE", long, nil), tc.user), "stable")
		})
	}
}

// TestLimiterBound: the limiter never holds more than maxBuckets windows;
// making room drops ended windows first, then only some live ones.
func TestLimiterBound(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		ended    int // windows already over when the limiter is full
		wantKept int // live windows kept at least
	}{
		{name: "half ended: every live window kept", ended: maxBuckets / 2, wantKept: maxBuckets - maxBuckets/2},
		{name: "all live: most kept", ended: 0, wantKept: maxBuckets * 7 / 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter()
			for i := 0; i < maxBuckets; i++ {
				window := time.Minute
				if i < tc.ended {
					window = time.Second
				}
				ok, _ := l.allow(fmt.Sprint("k", i), 10, window, now)
				require.True(t, ok)
			}
			require.Len(t, l.buckets, maxBuckets)
			ok, _ := l.allow("new", 10, time.Minute, now.Add(2*time.Second))
			assert.True(t, ok)
			assert.LessOrEqual(t, len(l.buckets), maxBuckets)
			assert.GreaterOrEqual(t, len(l.buckets), tc.wantKept)
			assert.Contains(t, l.buckets, "new")
			for k, b := range l.buckets {
				assert.True(t, now.Add(2*time.Second).Before(b.resetAt), "ended window %s kept", k)
			}
		})
	}
}
