// Package userauth verifies the user JWTs presented to sessionsvc's user
// API and derives the same lookup keys as the proxy plugin (DESIGN.md
// "Keys"): "sid:<claim>" and "fp:<base64url(sha256(raw token))>".
//
// Keys are configured by JWT_SECRET (HS256), JWT_PUBLIC_KEY_FILE (PEM, RSA
// for RS256 or EC P-256 for ES256) and JWKS_URL (RS256/ES256, fetched,
// cached and refetched when a token names an unknown kid). Each key accepts
// exactly one algorithm; "none" is never accepted.
package userauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/core/pubkey"
	"github.com/meshsession/meshsession/plugin/core/token"
)

// Errors returned by Verify (wrapped with detail).
var (
	// ErrInvalidToken: malformed, bad signature, wrong algorithm, expired, wrong iss/aud.
	ErrInvalidToken = errors.New("invalid token")
	// ErrNotConfigured: no verification key configured.
	ErrNotConfigured = errors.New("user token verification is not configured (set JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWKS_URL)")
)

// DefaultLeeway is the clock skew allowed on exp and nbf.
const DefaultLeeway = 60 * time.Second

// Config configures a Verifier.
type Config struct {
	Secret        string // JWT_SECRET: HS256
	PublicKeyFile string // JWT_PUBLIC_KEY_FILE: PEM public key (RS256 or ES256)
	JWKSURL       string // JWKS_URL
	Issuer        string // JWT_ISSUER, checked when set
	Audience      string // JWT_AUDIENCE, checked when set
	Leeway        time.Duration
	// UserClaims and SessionClaims name the claims holding the user id and
	// the session id, first present wins. Defaults: sub, id / sid, jti, sessionId.
	UserClaims    []string
	SessionClaims []string
	HTTPClient    *http.Client
	Logger        *slog.Logger
	Now           func() time.Time
}

// Identity is a verified caller.
type Identity struct {
	UserID       string
	SessionClaim string // value of the first session claim present ("" if none)
	IssuedAt     time.Time
	ExpiresAt    time.Time
	// Keys name the caller's session: "sid:<claim>" (when present) and "fp:<fingerprint>".
	Keys []string
}

type pinnedKey struct {
	alg string
	key any
}

// Verifier checks user tokens.
type Verifier struct {
	cfg      Config
	hmac     []byte
	static   *pinnedKey
	jwks     *jwksCache
	parser   *jwt.Parser
	methods  []string
	userC    []string
	sessionC []string
}

// New builds a Verifier. With no key configured it is still valid but
// every Verify fails with ErrNotConfigured.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	v := &Verifier{cfg: cfg, userC: cfg.UserClaims, sessionC: cfg.SessionClaims}
	if len(v.userC) == 0 {
		v.userC = []string{"sub", "id"}
	}
	if len(v.sessionC) == 0 {
		v.sessionC = []string{"sid", "jti", "sessionId"}
	}
	methods := map[string]bool{}
	if cfg.Secret != "" {
		if len(cfg.Secret) < 16 {
			return nil, errors.New("JWT_SECRET: must be at least 16 bytes")
		}
		v.hmac = []byte(cfg.Secret)
		methods["HS256"] = true
	}
	if cfg.PublicKeyFile != "" {
		pk, err := loadPEM(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEY_FILE: %w", err)
		}
		v.static = pk
		methods[pk.alg] = true
	}
	if cfg.JWKSURL != "" {
		v.jwks = &jwksCache{url: cfg.JWKSURL, client: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now}
		if err := v.jwks.refresh(ctx); err != nil {
			// Not fatal: the identity provider may come up after us.
			cfg.Logger.Warn("JWKS fetch failed; will retry on first use", "url", cfg.JWKSURL, "err", err)
		}
		methods["RS256"] = true
		methods["ES256"] = true
	}
	for m := range methods {
		v.methods = append(v.methods, m)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(cfg.Now),
		// Canonical base64url only (RFC 7515): unused bits must be zero.
		// With checkShape (no padding, no whitespace, no other alphabet)
		// every token has one spelling, and its fingerprint names it.
		jwt.WithStrictDecoding(),
		// An iat in the future (beyond the leeway) is refused.
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Configured reports whether any verification key is set.
func (v *Verifier) Configured() bool { return v != nil && len(v.methods) > 0 }

// Verify checks raw and returns the caller.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if !v.Configured() {
		return Identity{}, ErrNotConfigured
	}
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no token", ErrInvalidToken)
	}
	if len(raw) > 16<<10 {
		return Identity{}, fmt.Errorf("%w: token too long", ErrInvalidToken)
	}
	if err := checkShape(raw); err != nil {
		return Identity{}, fmt.Errorf("%w: malformed token: %v", ErrInvalidToken, err)
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s", ErrInvalidToken, describe(err))
	}
	// What may name a user or a session is the proxy plugin's rule.
	for _, n := range append(v.userC[:len(v.userC):len(v.userC)], v.sessionC...) {
		if s, ok := claims[n].(string); ok && !token.ValidID(s) {
			return Identity{}, fmt.Errorf("%w: claim %q must be a printable string of at most %d bytes", ErrInvalidToken, n, token.MaxIDLen)
		}
	}
	id := Identity{UserID: claimString(claims, v.userC...), SessionClaim: claimString(claims, v.sessionC...)}
	if id.UserID == "" {
		return Identity{}, fmt.Errorf("%w: no user id claim (%s)", ErrInvalidToken, strings.Join(v.userC, ", "))
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		id.IssuedAt = iat.Time
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.ExpiresAt = exp.Time
	}
	id.Keys = KeysFor(raw, id.SessionClaim)
	return id, nil
}

// checkShape refuses what the JWT library would decode leniently: any
// character outside the base64url alphabet and '.' (padding, '+', '/',
// whitespace, which Go's base64 decoder skips when it is CR or LF), and a
// header or payload that names a member twice (encoding/json keeps the
// last, other parsers the first: a terminated sid could hide behind a
// fresh one).
func checkShape(raw string) error {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return errors.New("token has characters outside the base64url alphabet")
		}
	}
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return errors.New("malformed token")
	}
	for i, name := range []string{"header", "payload"} {
		b, err := base64.RawURLEncoding.Strict().DecodeString(segs[i])
		if err != nil {
			return fmt.Errorf("token %s is not canonical base64url", name)
		}
		if err := uniqueMembers(b); err != nil {
			return fmt.Errorf("token %s: %w", name, err)
		}
		if name == "payload" {
			if err := timesInRange(b); err != nil {
				return err
			}
		}
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(segs[2]); err != nil {
		return errors.New("token signature is not canonical base64url")
	}
	return nil
}

// uniqueMembers checks that a JSON object's top-level member names are
// unique. Anything that is not an object is left to the JWT library.
func uniqueMembers(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := t.(string)
		if seen[name] {
			return fmt.Errorf("member %q appears more than once", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// described are the verification failures describe names, first match wins.
var described = []struct {
	err  error
	text string
}{
	{jwt.ErrTokenExpired, "token expired"},
	{jwt.ErrTokenNotValidYet, "token not valid yet"},
	{jwt.ErrTokenMalformed, "malformed token"},
	{jwt.ErrTokenSignatureInvalid, "signature invalid"},
	{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
	{jwt.ErrTokenInvalidAudience, "wrong audience"},
}

func describe(err error) string {
	for _, d := range described {
		if errors.Is(err, d.err) {
			return d.text
		}
	}
	if errors.Is(err, jwt.ErrTokenUnverifiable) {
		return "unverifiable token: " + err.Error()
	}
	return err.Error()
}

func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch alg {
	case "HS256":
		if v.hmac != nil {
			return v.hmac, nil
		}
	case "RS256", "ES256":
		if v.static != nil && v.static.alg == alg {
			if kid, _ := t.Header["kid"].(string); v.jwks == nil || kid == "" {
				return v.static.key, nil
			}
		}
		if v.jwks != nil {
			kid, _ := t.Header["kid"].(string)
			k, err := v.jwks.get(ctx, kid)
			if err != nil {
				if v.static != nil && v.static.alg == alg {
					return v.static.key, nil
				}
				return nil, err
			}
			if k.alg != alg {
				return nil, fmt.Errorf("key %q is pinned to %s, token uses %s", kid, k.alg, alg)
			}
			return k.key, nil
		}
		if v.static != nil {
			return nil, fmt.Errorf("the configured public key is pinned to %s, token uses %s", v.static.alg, alg)
		}
	}
	return nil, fmt.Errorf("algorithm %s is not accepted", alg)
}

// maxTime bounds exp, nbf and iat (the last second of year 9999): the JWT
// library converts larger numbers to int64 with overflow (an nbf of 1e300
// passed as reached, an exp of 1e19 was "expired").
const maxTime = 253402300799

// timesInRange refuses a payload whose exp, nbf or iat is a number past
// maxTime either way (other types are the library's to refuse).
func timesInRange(payload []byte) error {
	for _, c := range []string{"exp", "nbf", "iat"} {
		if r := gjson.GetBytes(payload, c); r.Type == gjson.Number && !(math.Abs(r.Num) <= maxTime) {
			return fmt.Errorf("claim %s is out of range", c)
		}
	}
	return nil
}

// claimString returns the first present claim as a string, as the proxy
// plugin reads it (token.ClaimNames): a string as is, an integer number of
// at most 19 digits by its text ("007"); any other number does not name
// anything, and the next name is tried.
func claimString(c jwt.MapClaims, names ...string) string {
	for _, n := range names {
		switch x := c[n].(type) {
		case string:
			if x != "" {
				return x
			}
		case json.Number:
			if token.IsIntLiteral(x.String()) {
				return x.String()
			}
		}
	}
	return ""
}

// Fingerprint is base64url (no padding) SHA-256 of the raw token.
func Fingerprint(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeysFor returns the keys naming the session of a token: "sid:<claim>"
// when sessionClaim is set, then "fp:<fingerprint>".
func KeysFor(raw, sessionClaim string) []string {
	keys := make([]string, 0, 2)
	if sessionClaim != "" {
		keys = append(keys, "sid:"+sessionClaim)
	}
	return append(keys, "fp:"+Fingerprint(raw))
}

func loadPEM(path string) (*pinnedKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, _, err := pubkey.ParsePEM(b)
	if err != nil {
		return nil, err
	}
	return pin(pub)
}

// pin checks pub as the proxy does (pubkey.Check) and pins the one
// algorithm it verifies.
func pin(pub any) (*pinnedKey, error) {
	if err := pubkey.Check(pub); err != nil {
		return nil, err
	}
	alg := "ES256" // the other key Check accepts: *ecdsa.PublicKey on P-256
	if _, ok := pub.(*rsa.PublicKey); ok {
		alg = "RS256"
	}
	return &pinnedKey{alg: alg, key: pub}, nil
}

// jwksCache holds the keys of a JWKS endpoint by kid.
type jwksCache struct {
	url    string
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]*pinnedKey
	fetchedAt time.Time
	lastTry   time.Time
}

const (
	jwksMaxAge      = time.Hour
	jwksMinInterval = 10 * time.Second // unknown kids cannot make us hammer the IdP
)

func (c *jwksCache) get(ctx context.Context, kid string) (*pinnedKey, error) {
	c.mu.Lock()
	k, ok := c.lookup(kid)
	stale := c.now().Sub(c.fetchedAt) > jwksMaxAge
	canTry := c.now().Sub(c.lastTry) >= jwksMinInterval
	c.mu.Unlock()
	if ok && !stale {
		return k, nil
	}
	if canTry {
		if err := c.refresh(ctx); err != nil {
			c.log.Warn("JWKS refresh failed", "url", c.url, "err", err)
			if ok {
				return k, nil // keep serving a stale key while the IdP is down
			}
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.lookup(kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("no JWKS key with kid %q", kid)
}

// lookup finds kid; an empty kid matches when the set has exactly one key.
func (c *jwksCache) lookup(kid string) (*pinnedKey, bool) {
	if kid == "" {
		if len(c.keys) == 1 {
			for _, k := range c.keys {
				return k, true
			}
		}
		return nil, false
	}
	k, ok := c.keys[kid]
	return k, ok
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func (c *jwksCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	c.lastTry = c.now()
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("decode JWKS: %w", err)
	}
	keys := map[string]*pinnedKey{}
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pk, err := parseJWK(k)
		if err != nil {
			c.log.Warn("skipping JWKS key", "index", i, "kid", k.Kid, "err", err)
			continue
		}
		keys[k.Kid] = pk
	}
	c.mu.Lock()
	c.keys = keys
	c.fetchedAt = c.now()
	c.mu.Unlock()
	return nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// b64coord decodes a P-256 coordinate (RFC 7518 6.2.1.2: 32 bytes; shorter
// encodings are left-padded as a big-endian integer would be).
func b64coord(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	if len(b) > 32 {
		return nil, fmt.Errorf("%d bytes, want 32", len(b))
	}
	return append(make([]byte, 32-len(b), 32), b...), nil
}

func parseJWK(k jwk) (*pinnedKey, error) {
	var pub any
	switch k.Kty {
	case "RSA":
		n, err := b64int(k.N)
		if err != nil {
			return nil, fmt.Errorf("bad n: %w", err)
		}
		e, err := b64int(k.E)
		if err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
			return nil, errors.New("bad e")
		}
		pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		if k.Crv != "P-256" {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64coord(k.X)
		if err != nil {
			return nil, fmt.Errorf("bad x: %w", err)
		}
		y, err := b64coord(k.Y)
		if err != nil {
			return nil, fmt.Errorf("bad y: %w", err)
		}
		// The uncompressed point 04 || x || y; parsing checks it is on the curve.
		ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, errors.New("point not on P-256")
		}
		pub = ec
	default:
		return nil, fmt.Errorf("unsupported kty %q", k.Kty)
	}
	pk, err := pin(pub)
	if err != nil {
		return nil, err
	}
	if k.Alg != "" && k.Alg != pk.alg {
		return nil, fmt.Errorf("alg %q does not match the %s key", k.Alg, k.Kty)
	}
	return pk, nil
}
