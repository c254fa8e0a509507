package decide

import (
	"math/rand/v2"
	"strings"

	"github.com/meshsession/meshsession/plugin/core/token"
)

// DefaultTokenCacheBytes bounds the memory of the verified-token cache.
const DefaultTokenCacheBytes = 1 << 20

// maxCachedToken: longer tokens are not cached.
const maxCachedToken = 4096

// cacheSlots is the number of slots of the token cache (a power of two).
const cacheSlots = 2048

// tokenCache remembers, per distinct token, the result of verification and
// claims decoding and its keys: clients present the same token on many
// requests, and verifying (RS256 especially), decoding and hashing it again
// each time is the bulk of a decision's cost (in Wasm, each byte touched
// costs nanoseconds: see the package benchmarks).
//
// It is direct-mapped: a token's slot is chosen by its length and last 8
// bytes (the end of its signature, which differs between tokens) times a
// random odd multiplier, with no call to a hash function or a map (in
// Wasm, each call costs tens of nanoseconds). A hit is confirmed by
// comparing the whole token, so it is exactly the same token; two tokens
// sharing a slot just evict each other. Only tokens that verified are
// cached; revocation, block, not-before and expiry are still checked on
// every request. When the byte budget is exceeded the cache is emptied.
type tokenCache struct {
	mul   uint64
	slots *[cacheSlots]*cacheEntry
	bytes int
	max   int
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
	return &tokenCache{mul: rand.Uint64() | 1, slots: new([cacheSlots]*cacheEntry), max: max}
}

func (c *tokenCache) slot(tok string) uint64 {
	var tail uint64
	if n := len(tok); n >= 8 {
		tail = uint64(tok[n-8]) | uint64(tok[n-7])<<8 | uint64(tok[n-6])<<16 | uint64(tok[n-5])<<24 |
			uint64(tok[n-4])<<32 | uint64(tok[n-3])<<40 | uint64(tok[n-2])<<48 | uint64(tok[n-1])<<56
	} else {
		for i := 0; i < n; i++ {
			tail = tail<<8 | uint64(tok[i])
		}
	}
	return ((tail ^ uint64(len(tok))) * c.mul) >> (64 - cacheBits)
}

// cacheBits is log2(cacheSlots).
const cacheBits = 11

func (c *tokenCache) get(tok string) (*cacheEntry, uint64) {
	if c.max <= 0 {
		return nil, 0
	}
	h := c.slot(tok)
	if e := c.slots[h]; e != nil && sameToken(e.tok, tok) {
		return e, h
	}
	return nil, h
}

func (c *tokenCache) put(h uint64, tok string, claims token.Claims, k tokenKeys, sum *[32]byte) {
	if c.max <= 0 || len(tok) > maxCachedToken {
		return
	}
	e := &cacheEntry{tok: strings.Clone(tok), claims: claims.Clone(), sum: *sum}
	e.keys = tokenKeys{sid: strings.Clone(k.sid), hashes: k.hashes, fpKey: strings.Clone(k.fpKey), fp: &e.sum}
	e.size = len(tok) + len(claims.SessionID) + len(claims.UserID) + len(k.sid) + len(k.fpKey) + 200
	if c.bytes+e.size > c.max {
		clear(c.slots[:])
		c.bytes = 0
	}
	if old := c.slots[h]; old != nil {
		c.bytes -= old.size
	}
	c.slots[h] = e
	c.bytes += e.size
}
