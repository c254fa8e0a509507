package secrets

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func b64(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func TestSealOpenRotate(t *testing.T) {
	old, err := ParseKeyring(b64(1))
	require.NoError(t, err)
	sealed, err := old.Seal("smtp-password")
	require.NoError(t, err)
	assert.True(t, IsSealed(sealed))
	assert.NotContains(t, sealed, "smtp-password")
	pt, err := old.Open(sealed)
	require.NoError(t, err)
	assert.Equal(t, "smtp-password", pt)

	s2, err := old.Seal("smtp-password")
	require.NoError(t, err)
	assert.NotEqual(t, sealed, s2, "random nonce")

	rotated, err := ParseKeyring(b64(2) + ", " + b64(1))
	require.NoError(t, err)
	pt, err = rotated.Open(sealed)
	require.NoError(t, err)
	assert.Equal(t, "smtp-password", pt)
	assert.True(t, rotated.NeedsReseal(sealed))
	fresh, err := rotated.Seal("x")
	require.NoError(t, err)
	assert.False(t, rotated.NeedsReseal(fresh))

	gone, err := ParseKeyring(b64(2))
	require.NoError(t, err)
	_, err = gone.Open(sealed)
	assert.ErrorContains(t, err, "no key")
}

func TestTamperAndBadInput(t *testing.T) {
	kr, err := ParseKeyring(b64(7))
	require.NoError(t, err)
	sealed, err := kr.Seal("secret")
	require.NoError(t, err)
	// Flip one ciphertext byte.
	i := strings.LastIndex(sealed, ":")
	raw, err := base64.RawURLEncoding.DecodeString(sealed[i+1:])
	require.NoError(t, err)
	raw[len(raw)-1] ^= 1
	bad := sealed[:i+1] + base64.RawURLEncoding.EncodeToString(raw)
	_, err = kr.Open(bad)
	assert.Error(t, err)
	for _, in := range []string{"plain", "enc:v1:", "enc:v1:abcd", "enc:v1:abcd:!!!", "enc:v1:abcd:AAAA"} {
		_, err := kr.Open(in)
		assert.Error(t, err, in)
	}
	_, err = (&Keyring{}).Seal("x")
	assert.ErrorIs(t, err, ErrNoKey)

	for _, in := range []string{"notbase64!!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		_, err := ParseKeyring(in)
		assert.Error(t, err, in)
	}
	k, err := GenerateKey()
	require.NoError(t, err)
	kr2, err := ParseKeyring(k)
	require.NoError(t, err)
	assert.True(t, kr2.Enabled())
}

func FuzzOpen(f *testing.F) {
	kr, _ := ParseKeyring(b64(3))
	s, _ := kr.Seal("hello")
	f.Add(s)
	f.Add("enc:v1:00000000:AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = kr.Open(in) // must not panic
	})
}
