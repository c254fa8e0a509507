package protocol

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// KeyHash is the 64-bit hash by which the plugin holds a revoked key and by
// which the binary sync feed names it: for an "fp:" key whose value is a
// SHA-256 digest (43 base64url characters), the digest's first 8 bytes
// (uniform already, so a token's digest is looked up without encoding it);
// for any other key, its XXH64. Never 0.
//
// Two keys with the same hash are one entry: for n revoked keys the chance
// that any two collide is about n²/2⁶⁵ (3·10⁻¹⁰ at 100,000), and the chance
// that a given live token's key hits one is n/2⁶⁴ (5·10⁻¹⁵). A collision
// can only refuse a token, never let a revoked one pass.
func KeyHash(key string) uint64 {
	if v, ok := strings.CutPrefix(key, PrefixFingerprint); ok && len(v) == 43 {
		var sum [33]byte
		n, err := base64.RawURLEncoding.Strict().Decode(sum[:], unsafe.Slice(unsafe.StringData(v), len(v)))
		if err == nil && n == 32 {
			return FingerprintHash((*[32]byte)(sum[:32]))
		}
	}
	return nonZero(xxhash.Sum64String(key))
}

// FingerprintHash is KeyHash of the "fp:" key of a token whose SHA-256 is sum.
func FingerprintHash(sum *[32]byte) uint64 { return nonZero(binary.LittleEndian.Uint64(sum[:8])) }

func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}
