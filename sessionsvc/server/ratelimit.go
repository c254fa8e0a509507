package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// User API rate limits (upstream's routes/content-api.js floors): writes
// (logout, terminate) at most 10 per window per user, reads at most 120.
// Settings can only tighten writes and only raise reads.
const (
	writeLimitFloor = 10
	readLimitFloor  = 120
	maxBuckets      = 50_000
)

// limiter is a fixed-window counter per route and user, in memory (each
// replica counts on its own, as upstream's per-process limiter).
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
		if len(l.buckets) >= maxBuckets {
			for k, v := range l.buckets {
				if !now.Before(v.resetAt) {
					delete(l.buckets, k)
				}
			}
			if len(l.buckets) >= maxBuckets {
				// Still full of live windows: start over rather than grow.
				l.buckets = map[string]*bucket{}
			}
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

// rateLimitUser applies the user API limits to an authenticated request.
func (s *Server) rateLimitUser(w http.ResponseWriter, r *http.Request, route string) error {
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
	ok, wait := s.limiter.allow(route+"\x00"+c.id.UserID, limit, window, s.nowUTC())
	if ok {
		return nil
	}
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return &apiError{Status: http.StatusTooManyRequests, Message: "Too many requests. Please slow down.",
		Details: map[string]any{"retryAfter": secs}}
}
