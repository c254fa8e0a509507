// Package jwtverify checks a JWT's signature for the configured verification
// mode: hs256 (HMAC-SHA256, constant-time compare), rs256 (RSA PKCS#1 v1.5
// with SHA-256) or es256 (ECDSA P-256 with SHA-256), using only the
// standard library so that it runs in Wasm.
//
// The header's "alg" is pinned to the mode: a token whose alg differs is
// refused, and alg "none" is refused in every mode. "kid" is optional and
// not used to select keys: every configured key is tried in order.
package jwtverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"unsafe"

	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/token"
)

// Errors returned by Verify.
var (
	ErrAlgNone      = errors.New(`token alg "none" is refused`)
	ErrAlgMismatch  = errors.New("token alg does not match the configured verification mode")
	ErrNoSignature  = errors.New("token has no signature")
	ErrBadSignature = errors.New("token signature does not verify")
)

// Verifier verifies tokens for one mode. It reuses buffers and an HMAC
// state: it is not safe for concurrent use (the plugin keeps one per VM).
type Verifier struct {
	mode string
	alg  string // the pinned JOSE alg, "" for modes that do not check signatures
	mac  hash.Hash
	keys []crypto.PublicKey
	sig  [512]byte
	sum  [sha256.Size]byte
}

// New returns a Verifier for a validated configuration.
func New(v config.Verify) (*Verifier, error) {
	vr := &Verifier{mode: v.Mode}
	switch v.Mode {
	case config.ModeNone, config.ModeJWTAuthnMetadata:
	case config.ModeHS256:
		if v.Secret == "" {
			return nil, errors.New("jwtverify: hs256 needs a secret")
		}
		vr.alg = "HS256"
		vr.mac = hmac.New(sha256.New, []byte(v.Secret))
	case config.ModeRS256, config.ModeES256:
		if len(v.Keys) == 0 {
			return nil, fmt.Errorf("jwtverify: %s needs public keys", v.Mode)
		}
		vr.alg = strings.ToUpper(v.Mode)
		for i, k := range v.Keys {
			switch k.(type) {
			case *rsa.PublicKey:
				if v.Mode != config.ModeRS256 {
					return nil, fmt.Errorf("jwtverify: key %d is RSA, mode is %s", i, v.Mode)
				}
			case *ecdsa.PublicKey:
				if v.Mode != config.ModeES256 {
					return nil, fmt.Errorf("jwtverify: key %d is ECDSA, mode is %s", i, v.Mode)
				}
			default:
				return nil, fmt.Errorf("jwtverify: key %d has unsupported type %T", i, k)
			}
		}
		vr.keys = v.Keys
	default:
		return nil, fmt.Errorf("jwtverify: unknown mode %q", v.Mode)
	}
	return vr, nil
}

// Mode returns the verification mode.
func (v *Verifier) Mode() string { return v.mode }

// Verify checks alg (from the decoded header) and the signature of p.
// In mode none it only refuses alg "none" (an earlier jwt_authn filter
// verified the token); in mode jwt_authn_metadata it checks nothing (the
// claims come from jwt_authn's metadata).
func (v *Verifier) Verify(alg string, p token.Parts) error {
	if strings.EqualFold(alg, "none") {
		return ErrAlgNone
	}
	switch v.mode {
	case config.ModeNone, config.ModeJWTAuthnMetadata:
		return nil
	}
	if alg != v.alg {
		return ErrAlgMismatch
	}
	if p.Signature == "" {
		return ErrNoSignature
	}
	n, err := token.DecodeSegment(v.sig[:], p.Signature)
	if err != nil {
		return fmt.Errorf("token signature: %w", err)
	}
	sig := v.sig[:n]
	input := unsafe.Slice(unsafe.StringData(p.SigningInput), len(p.SigningInput))
	switch v.mode {
	case config.ModeHS256:
		if n != sha256.Size {
			return ErrBadSignature
		}
		v.mac.Reset()
		v.mac.Write(input)
		if !hmac.Equal(v.mac.Sum(v.sum[:0]), sig) {
			return ErrBadSignature
		}
		return nil
	case config.ModeRS256:
		digest := sha256.Sum256(input)
		for _, k := range v.keys {
			if rsa.VerifyPKCS1v15(k.(*rsa.PublicKey), crypto.SHA256, digest[:], sig) == nil {
				return nil
			}
		}
		return ErrBadSignature
	case config.ModeES256:
		if n != 64 {
			return ErrBadSignature
		}
		digest := sha256.Sum256(input)
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		for _, k := range v.keys {
			if ecdsa.Verify(k.(*ecdsa.PublicKey), digest[:], r, s) {
				return nil
			}
		}
		return ErrBadSignature
	}
	return ErrBadSignature
}
