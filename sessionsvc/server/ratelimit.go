package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// User API rate limits (upstream's routes/content-api.js floors): writes
// (logout, terminate) at most 10 per window per user and path, reads at
// most 120.
// Settings can only tighten writes and only raise reads.
const (
	writeLimitFloor = 10
	readLimitFloor  = 120
	maxBuckets      = 50_000
)

// limiter is a fixed-window counter per key (concrete path and user), in
// memory (each replica counts on its own, as upstream's per-process
// limiter). It holds at most maxBuckets windows.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	count   int
	resetAt time.Time
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// reset forgets every window (settings changed).
func (l *limiter) reset() {
	l.mu.Lock()
	l.buckets = map[string]*bucket{}
	l.mu.Unlock()
}

// allow counts a request under key; when over max it returns the wait.
func (l *limiter) allow(key string, max int, window time.Duration, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || !now.Before(b.resetAt) {
		if b == nil && len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{resetAt: now.Add(window)}
		l.buckets[key] = b
	}
	b.count++
	if b.count > max {
		return false, b.resetAt.Sub(now)
	}
	return true, 0
}

// evict makes room for new windows: it drops the ended ones and, while
// live windows still fill more than 7/8 of maxBuckets, arbitrary live ones
// (Go's map order): a flood of distinct paths costs the other callers a
// few windows, not all of them, and one pass frees room for many keys.
func (l *limiter) evict(now time.Time) {
	for k, v := range l.buckets {
		if !now.Before(v.resetAt) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) <= maxBuckets*7/8 {
			break
		}
		delete(l.buckets, k)
	}
}

// maxBucketKeyLen bounds a bucket key's size: a longer key (a long path: the
// request line may take 64 KiB) is kept as its SHA-256, so maxBuckets keys
// take at most a few MiB.
const maxBucketKeyLen = 160

// rateLimitKey is upstream's bucket key (middlewares/rate-limit.js):
// `${ctx.path}::u:<user id>`, the concrete path, so each
// DELETE …/my-sessions/{id} has its own budget. r.URL.Path is the routed,
// clean and unescaped path (ServeMux redirected any other spelling), so one
// path cannot be spelled several ways to get more budgets.
func rateLimitKey(r *http.Request, userID string) string {
	k := r.URL.Path + "::u:" + userID
	if len(k) > maxBucketKeyLen {
		sum := sha256.Sum256([]byte(k))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return k
}

// rateLimitUser applies the user API limits to an authenticated request.
func (s *Server) rateLimitUser(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	if c == nil {
		return nil
	}
	set := s.Settings(r.Context())
	window := time.Duration(max(set.RateLimitWindowSeconds, 10)) * time.Second
	limit := readLimitFloor
	if set.RateLimitReadMax > limit {
		limit = set.RateLimitReadMax
	}
	if r.Method != http.MethodGet {
		limit = writeLimitFloor
		if set.RateLimitWriteMax > 0 && set.RateLimitWriteMax < limit {
			limit = set.RateLimitWriteMax
		}
	}
	ok, wait := s.limiter.allow(rateLimitKey(r, c.id.UserID), limit, window, s.nowUTC())
	if ok {
		return nil
	}
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return &apiError{Status: http.StatusTooManyRequests, Message: "Too many requests. Please slow down.",
		Details: map[string]any{"retryAfter": secs}}
}
