package decide

import (
	"hash/maphash"
	"strings"

	"github.com/meshsession/meshsession/plugin/core/token"
)

// DefaultTokenCacheBytes bounds the memory of the verified-token cache.
const DefaultTokenCacheBytes = 1 << 20

// maxCachedToken: longer tokens are not cached.
const maxCachedToken = 4096

// tokenCache remembers, per distinct token, the result of verification and
// claims decoding and its fingerprint: clients present the same token on
// many requests, and verifying (RS256 especially) and hashing it again
// each time is the bulk of a decision's cost. Entries are found by a
// seeded hash and confirmed by comparing the whole token, so a hit is
// exactly the same token. Only tokens that verified are cached; revocation,
// block, not-before and expiry are still checked on every request. When
// the byte budget is exceeded the cache is emptied.
type tokenCache struct {
	seed    maphash.Seed
	entries map[uint64]*cacheEntry
	bytes   int
	max     int
}

type cacheEntry struct {
	tok    string
	claims token.Claims
	fp     [3 + token.FingerprintLen]byte // "fp:" + fingerprint
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{seed: maphash.MakeSeed(), entries: make(map[uint64]*cacheEntry), max: max}
}

func (c *tokenCache) get(tok string) (*cacheEntry, uint64) {
	h := maphash.String(c.seed, tok)
	if e, ok := c.entries[h]; ok && e.tok == tok {
		return e, h
	}
	return nil, h
}

func (c *tokenCache) put(h uint64, tok string, claims token.Claims, fpKey []byte) {
	if c.max <= 0 || len(tok) > maxCachedToken {
		return
	}
	size := len(tok) + len(claims.SessionID) + len(claims.UserID) + 160
	if c.bytes+size > c.max {
		clear(c.entries)
		c.bytes = 0
	}
	e := &cacheEntry{tok: strings.Clone(tok), claims: claims.Clone()}
	copy(e.fp[:], fpKey)
	if old, ok := c.entries[h]; ok {
		c.bytes -= len(old.tok) + len(old.claims.SessionID) + len(old.claims.UserID) + 160
	}
	c.entries[h] = e
	c.bytes += size
}
