package jwtverify_test

import (
	"crypto"
	"crypto/elliptic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/jwtverify"
	"github.com/meshsession/meshsession/plugin/core/token"
)

func parts(t *testing.T, tok string) token.Parts {
	p, err := token.Split(tok)
	require.NoError(t, err)
	return p
}

func TestNew(t *testing.T) {
	_, err := jwtverify.New(config.Verify{Mode: "hs256"})
	assert.Error(t, err)
	_, err = jwtverify.New(config.Verify{Mode: "rs256"})
	assert.Error(t, err)
	ek := jwttest.ECKey(elliptic.P256())
	_, err = jwtverify.New(config.Verify{Mode: "rs256", Keys: []crypto.PublicKey{&ek.PublicKey}})
	assert.Error(t, err)
	_, err = jwtverify.New(config.Verify{Mode: "jwks"})
	assert.Error(t, err)
	v, err := jwtverify.New(config.Verify{Mode: "none"})
	require.NoError(t, err)
	assert.Equal(t, "none", v.Mode())
}

func TestVerify(t *testing.T) {
	rk, ek := jwttest.RSAKey(2048), jwttest.ECKey(elliptic.P256())
	hs, _ := jwtverify.New(config.Verify{Mode: "hs256", Secret: "k"})
	rs, _ := jwtverify.New(config.Verify{Mode: "rs256", Keys: []crypto.PublicKey{&rk.PublicKey}})
	es, _ := jwtverify.New(config.Verify{Mode: "es256", Keys: []crypto.PublicKey{&ek.PublicKey}})
	none, _ := jwtverify.New(config.Verify{Mode: "none"})
	const body = `{"sub":"1"}`
	tests := []struct {
		name string
		v    *jwtverify.Verifier
		alg  string
		tok  string
		err  error
	}{
		{"hs ok", hs, "HS256", jwttest.HS256("k", `{}`, body), nil},
		{"hs wrong key", hs, "HS256", jwttest.HS256("x", `{}`, body), jwtverify.ErrBadSignature},
		{"hs alg mismatch", hs, "HS512", jwttest.HS256("k", `{}`, body), jwtverify.ErrAlgMismatch},
		{"hs lowercase alg", hs, "hs256", jwttest.HS256("k", `{}`, body), jwtverify.ErrAlgMismatch},
		{"hs none", hs, "none", jwttest.Unsigned(`{}`, body), jwtverify.ErrAlgNone},
		{"hs no sig", hs, "HS256", jwttest.Unsigned(`{}`, body), jwtverify.ErrNoSignature},
		{"hs short sig", hs, "HS256", jwttest.Unsigned(`{}`, body) + "AAAA", jwtverify.ErrBadSignature},
		{"rs ok", rs, "RS256", jwttest.RS256(rk, `{}`, body), nil},
		{"rs bad", rs, "RS256", jwttest.HS256("k", `{}`, body), jwtverify.ErrBadSignature},
		{"rs hs confusion", rs, "HS256", jwttest.HS256("k", `{}`, body), jwtverify.ErrAlgMismatch},
		{"es ok", es, "ES256", jwttest.ES256(ek, `{}`, body), nil},
		{"es wrong size", es, "ES256", jwttest.HS256("k", `{}`, body), jwtverify.ErrBadSignature},
		{"none mode passes", none, "HS256", jwttest.HS256("k", `{}`, body), nil},
		{"none mode refuses alg none", none, "NONE", jwttest.Unsigned(`{}`, body), jwtverify.ErrAlgNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Verify(tc.alg, parts(t, tc.tok))
			if tc.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
	err := hs.Verify("HS256", token.Parts{Header: "a", Payload: "b", Signature: "!!", SigningInput: "a.b"})
	assert.ErrorIs(t, err, token.ErrBadBase64)
}

func BenchmarkVerify(b *testing.B) {
	rk, ek := jwttest.RSAKey(2048), jwttest.ECKey(elliptic.P256())
	hs, _ := jwtverify.New(config.Verify{Mode: "hs256", Secret: "k"})
	rs, _ := jwtverify.New(config.Verify{Mode: "rs256", Keys: []crypto.PublicKey{&rk.PublicKey}})
	es, _ := jwtverify.New(config.Verify{Mode: "es256", Keys: []crypto.PublicKey{&ek.PublicKey}})
	const body = `{"id":42,"sessionId":"3f2b8c1e-5d4a-4b7e-9c2d-1a2b3c4d5e6f","iat":1,"exp":2}`
	for _, c := range []struct {
		name string
		v    *jwtverify.Verifier
		alg  string
		tok  string
	}{
		{"HS256", hs, "HS256", jwttest.HS256("k", `{}`, body)},
		{"RS256", rs, "RS256", jwttest.RS256(rk, `{}`, body)},
		{"ES256", es, "ES256", jwttest.ES256(ek, `{}`, body)},
	} {
		p, _ := token.Split(c.tok)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.v.Verify(c.alg, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
