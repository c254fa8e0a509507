package userauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseJWKEC: an EC key's point is checked to be on P-256 and its
// coordinates to be at most 32 bytes.
func TestParseJWKEC(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ek, err := k.PublicKey.ECDH()
	require.NoError(t, err)
	raw := ek.Bytes() // 04 || x || y
	x, y := raw[1:33], raw[33:]
	b64 := base64.RawURLEncoding.EncodeToString
	offY := append([]byte(nil), y...)
	offY[31] ^= 1

	tests := []struct {
		name    string
		x, y    string
		wantErr string
	}{
		{name: "valid", x: b64(x), y: b64(y)},
		{name: "point off the curve", x: b64(x), y: b64(offY), wantErr: "point not on P-256"},
		{name: "coordinate too long", x: b64(append([]byte{0}, x...)), y: b64(y), wantErr: "bad x"},
		{name: "not base64url", x: "!!", y: b64(y), wantErr: "bad x"},
		{name: "zero point", x: b64(make([]byte, 32)), y: b64(make([]byte, 32)), wantErr: "point not on P-256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pk, err := parseJWK(jwk{Kty: "EC", Crv: "P-256", X: tc.x, Y: tc.y})
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "ES256", pk.alg)
			got, ok := pk.key.(*ecdsa.PublicKey)
			require.True(t, ok)
			assert.True(t, got.Equal(&k.PublicKey))
		})
	}
	// A coordinate with leading zero bytes dropped is left-padded.
	assert.Equal(t, append(make([]byte, 31), 7), must(b64coord(b64([]byte{7}))))
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
