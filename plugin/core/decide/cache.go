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

// hashTail is how many trailing bytes of a token its cache slot is chosen
// by: a token ends with its signature, which differs between tokens.
const hashTail = 24

// tokenCache remembers, per distinct token, the result of verification and
// claims decoding and its keys: clients present the same token on many
// requests, and verifying (RS256 especially), decoding and hashing it again
// each time is the bulk of a decision's cost (in Wasm, each byte touched
// costs nanoseconds: see the package benchmarks).
//
// A slot is chosen by a seeded hash of the token's length and last
// hashTail bytes, and a hit is confirmed by comparing the whole token, so a
// hit is exactly the same token (two tokens sharing a slot just evict each
// other). Only tokens that verified are cached; revocation, block,
// not-before and expiry are still checked on every request. When the byte
// budget is exceeded the cache is emptied.
type tokenCache struct {
	seed    maphash.Seed
	entries map[uint64]*cacheEntry
	bytes   int
	max     int
}

// cacheEntry holds a token's verified claims and keys, in strings it owns.
type cacheEntry struct {
	tok    string
	claims token.Claims
	keys   tokenKeys
	sum    [32]byte
	size   int
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{seed: maphash.MakeSeed(), entries: make(map[uint64]*cacheEntry), max: max}
}

func (c *tokenCache) slot(tok string) uint64 {
	tail := tok
	if len(tail) > hashTail {
		tail = tail[len(tail)-hashTail:]
	}
	return maphash.String(c.seed, tail) ^ uint64(len(tok))
}

func (c *tokenCache) get(tok string) (*cacheEntry, uint64) {
	if c.max <= 0 {
		return nil, 0
	}
	h := c.slot(tok)
	if e, ok := c.entries[h]; ok && sameToken(e.tok, tok) {
		return e, h
	}
	return nil, h
}

func (c *tokenCache) put(h uint64, tok string, claims token.Claims, k tokenKeys, sum *[32]byte) {
	if c.max <= 0 || len(tok) > maxCachedToken {
		return
	}
	e := &cacheEntry{tok: strings.Clone(tok), claims: claims.Clone(), sum: *sum}
	e.keys = tokenKeys{sid: strings.Clone(k.sid), sidHash: k.sidHash, fpKey: strings.Clone(k.fpKey), fp: &e.sum}
	e.size = len(tok) + len(claims.SessionID) + len(claims.UserID) + len(k.sid) + len(k.fpKey) + 200
	if c.bytes+e.size > c.max {
		clear(c.entries)
		c.bytes = 0
	}
	if old, ok := c.entries[h]; ok {
		c.bytes -= old.size
	}
	c.entries[h] = e
	c.bytes += e.size
}
