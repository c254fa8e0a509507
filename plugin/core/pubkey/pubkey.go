// Package pubkey reads the public keys that verify RS256 and ES256 tokens,
// for the proxy's configuration (verify.public_keys) and for sessionsvc
// (JWT_PUBLIC_KEY_FILE, JWKS), so that both accept the same keys. It uses
// only the standard library and runs in Wasm.
package pubkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// ParsePEM decodes the first PEM block of p, a PUBLIC KEY (PKIX), RSA
// PUBLIC KEY (PKCS#1) or CERTIFICATE, and returns its key, checked by
// Check, and what follows the block.
func ParsePEM(p []byte) (key crypto.PublicKey, rest []byte, err error) {
	block, rest := pem.Decode(p)
	if block == nil {
		return nil, nil, errors.New("not a PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parse PEM key: %w", err)
	}
	if err := Check(key); err != nil {
		return nil, nil, err
	}
	return key, rest, nil
}

// Check accepts an *rsa.PublicKey of at least MinRSABits bits (RS256) and
// an *ecdsa.PublicKey on P-256 (ES256), and refuses any other key.
func Check(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too small (at least %d)", k.N.BitLen(), MinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("ECDSA key is not on curve P-256")
		}
		return nil
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
}
