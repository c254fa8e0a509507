package userauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
)

const secret = "test-secret-0123456789abcdef"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func base(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func newV(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	cfg.Now = func() time.Time { return now }
	v, err := New(context.Background(), cfg)
	require.NoError(t, err)
	return v
}

func TestHS256(t *testing.T) {
	v := newV(t, Config{Secret: secret, Issuer: "app", Audience: "web"})
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(secret), c, "") }
	noneTok := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, base(jwt.MapClaims{"iss": "app", "aud": "web"})).SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		return s
	}
	cases := []struct {
		name    string
		token   string
		user    string
		wantErr string
	}{
		{"ok", hs(base(jwt.MapClaims{"iss": "app", "aud": "web", "sid": "s1"})), "alice", ""},
		{"numeric id claim", hs(base(jwt.MapClaims{"sub": nil, "id": 42, "iss": "app", "aud": "web"})), "42", ""},
		{"expired within leeway", hs(base(jwt.MapClaims{"iss": "app", "aud": "web", "exp": now.Add(-30 * time.Second).Unix()})), "alice", ""},
		{"expired", hs(base(jwt.MapClaims{"iss": "app", "aud": "web", "exp": now.Add(-2 * time.Minute).Unix()})), "", "token expired"},
		{"not yet valid", hs(base(jwt.MapClaims{"iss": "app", "aud": "web", "nbf": now.Add(5 * time.Minute).Unix()})), "", "not valid yet"},
		{"wrong issuer", hs(base(jwt.MapClaims{"iss": "evil", "aud": "web"})), "", "wrong issuer"},
		{"wrong audience", hs(base(jwt.MapClaims{"iss": "app", "aud": "api"})), "", "wrong audience"},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789"), base(jwt.MapClaims{"iss": "app", "aud": "web"}), ""), "", "signature"},
		{"alg none", noneTok(), "", "invalid token"},
		{"HS384 not pinned", sign(t, jwt.SigningMethodHS384, []byte(secret), base(jwt.MapClaims{"iss": "app", "aud": "web"}), ""), "", "invalid token"},
		{"no user", hs(base(jwt.MapClaims{"sub": nil, "iss": "app", "aud": "web"})), "", "no user id"},
		{"garbage", "a.b.c", "", "malformed"},
		{"empty", "", "", "no token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tc.token)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrInvalidToken)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.user, id.UserID)
		})
	}
}

func TestKeys(t *testing.T) {
	v := newV(t, Config{Secret: secret})
	raw := sign(t, jwt.SigningMethodHS256, []byte(secret), base(jwt.MapClaims{"jti": "j-1", "sessionId": "other"}), "")
	id, err := v.Verify(context.Background(), raw)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(raw))
	fp := base64.RawURLEncoding.EncodeToString(sum[:])
	assert.Equal(t, []string{"sid:j-1", "fp:" + fp}, id.Keys)
	assert.Equal(t, now.Unix(), id.IssuedAt.Unix())

	raw = sign(t, jwt.SigningMethodHS256, []byte(secret), base(jwt.MapClaims{"sessionId": 7}), "")
	id, err = v.Verify(context.Background(), raw)
	require.NoError(t, err)
	assert.Equal(t, "sid:7", id.Keys[0])

	raw = sign(t, jwt.SigningMethodHS256, []byte(secret), base(nil), "")
	id, err = v.Verify(context.Background(), raw)
	require.NoError(t, err)
	assert.Len(t, id.Keys, 1)
	assert.Equal(t, "fp:"+Fingerprint(raw), id.Keys[0])
	assert.NotContains(t, Fingerprint(raw), "=")
}

func writePEM(t *testing.T, pub any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pub.pem")
	require.NoError(t, os.WriteFile(p, []byte(jwttest.PublicPEM(pub)), 0o600))
	return p
}

func TestPEMPinnedAlgorithms(t *testing.T) {
	rk := jwttest.RSAKey(2048)
	v := newV(t, Config{PublicKeyFile: writePEM(t, &rk.PublicKey)})
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rk, base(nil), ""))
	require.NoError(t, err)

	// Key confusion: an HS256 token keyed with the public key's bytes.
	pemBytes, _ := os.ReadFile(v.cfg.PublicKeyFile)
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, pemBytes, base(nil), ""))
	assert.ErrorIs(t, err, ErrInvalidToken)

	ek := jwttest.ECKey(elliptic.P256())
	ve := newV(t, Config{PublicKeyFile: writePEM(t, &ek.PublicKey)})
	_, err = ve.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ek, base(nil), ""))
	require.NoError(t, err)
	_, err = ve.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rk, base(nil), ""))
	assert.ErrorIs(t, err, ErrInvalidToken, "an ES256 key does not accept RS256")

	_, err = New(context.Background(), Config{PublicKeyFile: filepath.Join(t.TempDir(), "missing.pem")})
	assert.ErrorContains(t, err, "JWT_PUBLIC_KEY_FILE")
	_, err = New(context.Background(), Config{Secret: "short"})
	assert.Error(t, err)
}

func TestJWKSRotation(t *testing.T) {
	k1, k2 := jwttest.RSAKey(2048), jwttest.ECKey(elliptic.P256())
	var includeK2 atomic.Bool
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
		keys := []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": b64(k1.N.Bytes()), "e": b64(big.NewInt(int64(k1.E)).Bytes())}}
		if includeK2.Load() {
			keys = append(keys, map[string]string{"kty": "EC", "kid": "k2", "crv": "P-256",
				"x": b64(k2.X.FillBytes(make([]byte, 32))), "y": b64(k2.Y.FillBytes(make([]byte, 32)))})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	defer srv.Close()
	clock := now
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	assert.Equal(t, int32(1), fetches.Load())

	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k1, base(nil), "k1"))
	require.NoError(t, err)
	assert.Equal(t, int32(1), fetches.Load(), "cached")

	// A new kid appears at the IdP: refetched on first sight.
	includeK2.Store(true)
	clock = clock.Add(time.Minute)
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k2, base(nil), "k2"))
	require.NoError(t, err)
	assert.Equal(t, int32(2), fetches.Load())

	// kid k1 is pinned to RS256: a token claiming k1 with ES256 is refused.
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k2, base(nil), "k1"))
	assert.ErrorIs(t, err, ErrInvalidToken)

	// Unknown kids do not make us refetch more than once per interval.
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k1, base(nil), "nope"))
	assert.Error(t, err)
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k1, base(nil), "nope2"))
	assert.Error(t, err)
	assert.LessOrEqual(t, fetches.Load(), int32(3))
}

// TestParseJWKEC: an EC key's point is checked to be on P-256 and its
// coordinates to be at most 32 bytes.
func TestParseJWKEC(t *testing.T) {
	k := jwttest.ECKey(elliptic.P256())
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

func TestNotConfigured(t *testing.T) {
	v := newV(t, Config{})
	assert.False(t, v.Configured())
	_, err := v.Verify(context.Background(), "x.y.z")
	assert.ErrorIs(t, err, ErrNotConfigured)
}

const hsHeader = `{"alg":"HS256","typ":"JWT"}`

// Issue 12 items 1, 3, 4, 5 on the user API's verifier.
func TestVerifyHostileTokens(t *testing.T) {
	v := newV(t, Config{Secret: secret})
	ctx := context.Background()
	exp := now.Add(time.Hour).Unix()
	good := jwttest.HS256(secret, hsHeader, fmt.Sprintf(`{"sub":"alice","sid":"s-1","iat":%d,"exp":%d}`, now.Unix(), exp))
	id, err := v.Verify(ctx, good)
	require.NoError(t, err)
	assert.Equal(t, KeysFor(good, "s-1"), id.Keys)

	// Item 1: no variant verifies (each would get a fingerprint of its own).
	for name, tok := range jwttest.Variants(good) {
		_, err := v.Verify(ctx, tok)
		assert.ErrorIs(t, err, ErrInvalidToken, name)
	}

	for name, payload := range map[string]string{
		// Item 4: duplicate members.
		"two sid":      fmt.Sprintf(`{"sub":"alice","sid":"fresh","sid":"ended","exp":%d}`, exp),
		"two sub":      fmt.Sprintf(`{"sub":"alice","sub":"bob","exp":%d}`, exp),
		"escaped twin": fmt.Sprintf(`{"sub":"alice","sid":"a","s\u0069d":"b","exp":%d}`, exp),
		"two exp":      fmt.Sprintf(`{"sub":"alice","exp":1,"exp":%d}`, exp),
		// Item 3: identity claims must be printable and bounded.
		"sub with CRLF": fmt.Sprintf(`{"sub":"alice\r\nx: y","exp":%d}`, exp),
		"sid with NUL":  fmt.Sprintf(`{"sub":"alice","sid":"a\u0000","exp":%d}`, exp),
		"jti fallback":  fmt.Sprintf(`{"sub":"alice","sid":"ok","jti":"a\nb","exp":%d}`, exp),
		"sid too long":  fmt.Sprintf(`{"sub":"alice","sid":"%s","exp":%d}`, strings.Repeat("s", 257), exp),
		// Item 5: iat in the future beyond the leeway.
		"iat in 1 hour": fmt.Sprintf(`{"sub":"alice","iat":%d,"exp":%d}`, now.Add(time.Hour).Unix(), exp+3600),
		"iat in 2 min":  fmt.Sprintf(`{"sub":"alice","iat":%d,"exp":%d}`, now.Add(2*time.Minute).Unix(), exp),
		// Times past year 9999 overflowed in the JWT library: an nbf or iat
		// of 1e300 passed.
		"nbf 1e300":  fmt.Sprintf(`{"sub":"alice","nbf":1e300,"exp":%d}`, exp),
		"nbf 9.3e18": fmt.Sprintf(`{"sub":"alice","nbf":9.3e18,"exp":%d}`, exp),
		"iat 1e300":  fmt.Sprintf(`{"sub":"alice","iat":1e300,"exp":%d}`, exp),
		"exp 1e19":   `{"sub":"alice","exp":1e19}`,
		// A number that is not an integer of at most 19 digits names no
		// user, as at the proxy.
		"sub 1.5":       fmt.Sprintf(`{"sub":1.5,"exp":%d}`, exp),
		"sub 1e300":     fmt.Sprintf(`{"sub":1e300,"exp":%d}`, exp),
		"sub 20 digits": fmt.Sprintf(`{"sub":12345678901234567890,"exp":%d}`, exp),
	} {
		_, err := v.Verify(ctx, jwttest.HS256(secret, hsHeader, payload))
		assert.ErrorIs(t, err, ErrInvalidToken, name)
	}
	_, err = v.Verify(ctx, jwttest.HS256(secret, `{"alg":"HS256","alg":"none"}`, fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp)))
	assert.ErrorIs(t, err, ErrInvalidToken, "two alg")

	// Still accepted: iat within the leeway, a 256-byte sid, nested duplicates.
	for name, payload := range map[string]string{
		"iat in 30 s": fmt.Sprintf(`{"sub":"alice","iat":%d,"exp":%d}`, now.Add(30*time.Second).Unix(), exp),
		"sid 256":     fmt.Sprintf(`{"sub":"alice","sid":"%s","exp":%d}`, strings.Repeat("s", 256), exp),
		"nested twin": fmt.Sprintf(`{"sub":"alice","x":{"a":1,"a":2},"exp":%d}`, exp),
		"unicode sub": fmt.Sprintf(`{"sub":"Zoë ✓","exp":%d}`, exp),
	} {
		_, err := v.Verify(ctx, jwttest.HS256(secret, hsHeader, payload))
		assert.NoError(t, err, name)
	}
	// golang-jwt's own signer produces canonical tokens.
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(secret), base(nil), ""))
	assert.NoError(t, err)
}

func FuzzVerify(f *testing.F) {
	v, _ := New(context.Background(), Config{Secret: secret})
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a"}).SignedString([]byte(secret))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("....")
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err == nil && id.UserID == "" {
			t.Fatalf("accepted token without user: %q", raw)
		}
	})
}

// TestNumericUserClaim: an integer user claim names the user by its text,
// as the proxy plugin reads it; a non-integer one is passed over for the
// next claim name.
func TestNumericUserClaim(t *testing.T) {
	v := newV(t, Config{Secret: secret})
	exp := now.Add(time.Hour).Unix()
	for payload, want := range map[string]string{
		fmt.Sprintf(`{"sub":42,"exp":%d}`, exp):             "42",
		fmt.Sprintf(`{"sub":-7,"exp":%d}`, exp):             "-7",
		fmt.Sprintf(`{"sub":1.5,"id":"bob","exp":%d}`, exp): "bob",
	} {
		id, err := v.Verify(context.Background(), jwttest.HS256(secret, hsHeader, payload))
		require.NoError(t, err, payload)
		assert.Equal(t, want, id.UserID, payload)
	}
}
