// Package jwttest mints JWTs for the core's tests and benchmarks (HS256,
// RS256, ES256, unsigned), from raw JSON header and payload text so that
// tests can craft malformed tokens too.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
)

// B64 encodes s as unpadded base64url.
func B64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// Unsigned returns header.payload. (empty signature).
func Unsigned(header, payload string) string { return B64(header) + "." + B64(payload) + "." }

// HS256 signs with secret; header should say "alg":"HS256".
func HS256(secret, header, payload string) string {
	in := B64(header) + "." + B64(payload)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// RS256 signs with k.
func RS256(k *rsa.PrivateKey, header, payload string) string {
	in := B64(header) + "." + B64(payload)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// ES256 signs with k (P-256), signature r||s.
func ES256(k *ecdsa.PrivateKey, header, payload string) string {
	in := B64(header) + "." + B64(payload)
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// PublicPEM returns the PKIX PEM of a public key.
func PublicPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
