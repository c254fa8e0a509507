// Package secrets seals values stored at rest (SMTP passwords, webhook
// secrets) with AES-256-GCM under a keyring read from SESSION_ENCRYPTION_KEY.
//
// The keyring is a comma-separated list of base64 32-byte keys. The first
// key seals; every key is tried to open, so a key is rotated by putting the
// new one first and keeping the old one until everything was re-sealed.
// A sealed value is "enc:v1:<key id>:<base64url(nonce || ciphertext)>"
// where the key id is the first 8 hex digits of SHA-256(key).
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Prefix starts every sealed value.
const Prefix = "enc:v1:"

// ErrNoKey means no key is configured, so nothing can be sealed or opened.
var ErrNoKey = errors.New("no SESSION_ENCRYPTION_KEY configured")

type key struct {
	id   string
	aead cipher.AEAD
	mac  []byte // HMAC key of lookup tokens, derived from the key
}

// Keyring seals with its first key and opens with any.
type Keyring struct {
	keys []key
}

// ParseKeyring reads a comma-separated list of base64 (standard or URL,
// padded or not) 32-byte keys. An empty string gives an empty keyring.
func ParseKeyring(s string) (*Keyring, error) {
	kr := &Keyring{}
	if strings.TrimSpace(s) == "" {
		return kr, nil
	}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		raw, err := decodeB64(part)
		if err != nil {
			return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY entry %d: not base64: %w", i+1, err)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY entry %d: want 32 bytes, got %d", i+1, len(raw))
		}
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY entry %d: %w", i+1, err)
		}
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// NewKeyring builds a keyring from raw 32-byte keys (first seals).
func NewKeyring(raw ...[]byte) (*Keyring, error) {
	kr := &Keyring{}
	for i, r := range raw {
		if len(r) != 32 {
			return nil, fmt.Errorf("key %d: want 32 bytes, got %d", i+1, len(r))
		}
		k, err := newKey(r)
		if err != nil {
			return nil, err
		}
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// GenerateKey returns a new random key, base64 encoded.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return nil, err
}

func newKey(raw []byte) (key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("gcm: %w", err)
	}
	sum := sha256.Sum256(raw)
	mac := sha256.Sum256(append([]byte("meshsession lookup v1\x00"), raw...))
	return key{id: hex.EncodeToString(sum[:4]), aead: aead, mac: mac[:]}, nil
}

// Enabled reports whether the keyring can seal.
func (k *Keyring) Enabled() bool { return k != nil && len(k.keys) > 0 }

// IsSealed reports whether s looks like a sealed value.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// Seal encrypts plaintext with the first key. The key id is bound as
// additional data, so a ciphertext cannot be relabelled.
func (k *Keyring) Seal(plaintext string) (string, error) {
	if !k.Enabled() {
		return "", ErrNoKey
	}
	cur := k.keys[0]
	nonce := make([]byte, cur.aead.NonceSize(), cur.aead.NonceSize()+len(plaintext)+cur.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out := cur.aead.Seal(nonce, nonce, []byte(plaintext), []byte(cur.id))
	return Prefix + cur.id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed value, trying the key named by its id first and
// then every other key.
func (k *Keyring) Open(sealed string) (string, error) {
	if !IsSealed(sealed) {
		return "", errors.New("open: not a sealed value")
	}
	if !k.Enabled() {
		return "", ErrNoKey
	}
	id, body, ok := strings.Cut(strings.TrimPrefix(sealed, Prefix), ":")
	if !ok {
		return "", errors.New("open: malformed sealed value")
	}
	data, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", fmt.Errorf("open: malformed sealed value: %w", err)
	}
	try := func(kk key) (string, bool) {
		n := kk.aead.NonceSize()
		if len(data) < n+kk.aead.Overhead() {
			return "", false
		}
		pt, err := kk.aead.Open(nil, data[:n], data[n:], []byte(id))
		if err != nil {
			return "", false
		}
		return string(pt), true
	}
	for _, kk := range k.keys {
		if kk.id == id {
			if pt, ok := try(kk); ok {
				return pt, nil
			}
		}
	}
	for _, kk := range k.keys {
		if kk.id != id {
			if pt, ok := try(kk); ok {
				return pt, nil
			}
		}
	}
	return "", errors.New("open: no key in SESSION_ENCRYPTION_KEY decrypts this value (wrong or rotated-out key)")
}

// NeedsReseal reports whether a sealed value was sealed with a key other
// than the current first key.
func (k *Keyring) NeedsReseal(sealed string) bool {
	if !k.Enabled() || !IsSealed(sealed) {
		return false
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(sealed, Prefix), ":")
	return id != k.keys[0].id
}
