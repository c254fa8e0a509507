// Package jwttest mints JWTs for tests and benchmarks (the plugin's core and
// filter, sessionsvc's user-token verifier): HS256, RS256, ES256 and
// unsigned, from raw JSON header and payload text so that tests can craft
// malformed tokens too, and the re-spellings lenient decoders accept.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
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

// RSAKey generates an RSA key of bits bits.
func RSAKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// ECKey generates an ECDSA key on curve (elliptic.P256() for ES256).
func ECKey(curve elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// PublicPEM returns the PKIX PEM of a public key.
func PublicPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Variants returns re-spellings of a compact JWS that lenient base64url
// decoders accept, by name: for each of header, payload and signature, '='
// and '==' appended, an unused low bit of the last character set (when the
// segment has unused bits), the standard alphabet ('+', '/') and a space or
// a newline inside.
func Variants(tok string) map[string]string {
	segs := strings.SplitN(tok, ".", 3)
	if len(segs) != 3 {
		panic("jwttest.Variants: not a compact JWS")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	out := map[string]string{}
	join := func(i int, seg string) string {
		s := [3]string{segs[0], segs[1], segs[2]}
		s[i] = seg
		return s[0] + "." + s[1] + "." + s[2]
	}
	for i, name := range []string{"header", "payload", "signature"} {
		seg := segs[i]
		if seg == "" {
			continue
		}
		out[name+" ="] = join(i, seg+"=")
		out[name+" =="] = join(i, seg+"==")
		if n := len(seg) % 4; n == 2 || n == 3 {
			last := strings.IndexByte(alphabet, seg[len(seg)-1])
			out[name+" low bits"] = join(i, seg[:len(seg)-1]+string(alphabet[last|1]))
		}
		out[name+" +"] = join(i, strings.ReplaceAll(seg, "-", "+")+"+A")
		out[name+" /"] = join(i, strings.ReplaceAll(seg, "_", "/")+"/A")
		out[name+" space"] = join(i, seg[:1]+" "+seg[1:])
		out[name+" newline"] = join(i, seg[:1]+"\n"+seg[1:])
	}
	return out
}
