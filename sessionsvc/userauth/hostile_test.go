package userauth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
)

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
