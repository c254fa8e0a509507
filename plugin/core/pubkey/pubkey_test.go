package pubkey_test

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/pubkey"
)

func TestParsePEM(t *testing.T) {
	rsaKey, small := jwttest.RSAKey(2048), jwttest.RSAKey(1024)
	ec, ec384 := jwttest.ECKey(elliptic.P256()), jwttest.ECKey(elliptic.P384())
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	pkix := func(k any) []byte { return []byte(jwttest.PublicPEM(k)) }

	tests := []struct {
		name     string
		in       []byte
		want     any
		wantRest string
		errText  string
	}{
		{name: "pkix rsa", in: pkix(&rsaKey.PublicKey), want: &rsaKey.PublicKey},
		{name: "pkcs1 rsa", in: block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), want: &rsaKey.PublicKey},
		{name: "pkix ec with what follows", in: append(pkix(&ec.PublicKey), "rest"...), want: &ec.PublicKey, wantRest: "rest"},
		{name: "not pem", in: []byte("not pem"), errText: "not a PEM block"},
		{name: "private key", in: block("PRIVATE KEY", []byte("x")), errText: `unsupported PEM block "PRIVATE KEY"`},
		{name: "garbage", in: block("PUBLIC KEY", []byte("garbage")), errText: "parse PEM key"},
		{name: "small rsa", in: pkix(&small.PublicKey), errText: "RSA key of 1024 bits is too small"},
		{name: "p-384", in: pkix(&ec384.PublicKey), errText: "not on curve P-256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, rest, err := pubkey.ParsePEM(tc.in)
			if tc.errText != "" {
				assert.ErrorContains(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			assert.True(t, key.(interface{ Equal(x crypto.PublicKey) bool }).Equal(tc.want))
			assert.Equal(t, tc.wantRest, string(rest))
		})
	}
}

func TestCheckRefusesOtherKeys(t *testing.T) {
	assert.ErrorContains(t, pubkey.Check("not a key"), "unsupported key type string")
}
