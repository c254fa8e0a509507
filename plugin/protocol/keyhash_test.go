package protocol_test

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
)

func TestKeyHash(t *testing.T) {
	sum := sha256.Sum256([]byte("a token"))
	fpKey := protocol.PrefixFingerprint + base64.RawURLEncoding.EncodeToString(sum[:])
	require.Equal(t, protocol.FingerprintHash(&sum), protocol.KeyHash(fpKey), "an fp: key hashes as its digest")
	require.NotEqual(t, protocol.KeyHash("sid:a"), protocol.KeyHash("sid:b"))
	// an fp: value that is not a digest is hashed as text
	require.NotEqual(t, protocol.KeyHash("fp:short"), protocol.KeyHash("sid:short"))
	require.NotEqual(t, protocol.KeyHash(fpKey[:len(fpKey)-1]+"_"), protocol.KeyHash(fpKey))
	require.NotZero(t, protocol.KeyHash(""))
	var zero [32]byte
	require.NotZero(t, protocol.FingerprintHash(&zero), "0 is the empty slot")
	// Stable across releases: published states and binary feeds carry it.
	require.Equal(t, uint64(0x4f58d3b2fd374fe0), protocol.KeyHash("sid:stable"))
}
