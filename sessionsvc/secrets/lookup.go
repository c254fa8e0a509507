package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// LookupToken is the keyed hash under which a sealed value can be found by
// exact match without being readable: kind ("d", "u", "e") ":" the first
// 128 bits of HMAC-SHA256(key, lower-cased trimmed value), hex. Computed
// with the sealing key; "" when the keyring is empty or v is blank.
func (k *Keyring) LookupToken(kind, v string) string {
	if !k.Enabled() {
		return ""
	}
	return lookupToken(k.keys[0].mac, kind, v)
}

// LookupTokens are v's tokens under every key (rows indexed before a key
// rotation still match).
func (k *Keyring) LookupTokens(kind, v string) []string {
	if !k.Enabled() {
		return nil
	}
	var out []string
	for _, key := range k.keys {
		if t := lookupToken(key.mac, kind, v); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func lookupToken(macKey []byte, kind, v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return ""
	}
	m := hmac.New(sha256.New, macKey)
	m.Write([]byte(v))
	return kind + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}
