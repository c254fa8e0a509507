// Package config parses and validates the filter's JSON configuration (the
// Envoy wasm filter's "configuration" value) into a typed Config.
//
// Every field is optional and defaults to a value that works with the demo
// app; unknown fields are an error; a bad value is an error that names the
// field by its JSON path, e.g.
//
//	config: field "sync_interval": invalid duration "5x"
//
// Parse is called once at plugin start. It uses gjson, not encoding/json, so
// that it can report exact paths and reject duplicate keys.
package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/core/pubkey"
)

// Verification modes (Verify.Mode).
const (
	ModeNone             = "none"
	ModeJWTAuthnMetadata = "jwt_authn_metadata"
	ModeHS256            = "hs256"
	ModeRS256            = "rs256"
	ModeES256            = "es256"
)

// Stale policies (StalePolicy).
const (
	FailOpen   = "fail_open"
	FailClosed = "fail_closed"
)

// Login-unavailable policies (LoginUnavailablePolicy).
const (
	LoginAllow = "allow"
	LoginDeny  = "deny"
)

// Limits enforced by validation.
const (
	MaxSyncPageSize     = 100000
	MaxTrustedProxyHops = 64
	MaxConfigSize       = 1 << 20
)

// Route is an observed route. An empty Path disables the route.
type Route struct {
	Path   string `json:"path"`
	Method string `json:"method"`
}

// LoginRoute is the login route and where its bodies carry the token,
// refresh token, user id (response) and identifier (request).
type LoginRoute struct {
	Route
	TokenPath        string `json:"token_path"`
	RefreshTokenPath string `json:"refresh_token_path"`
	UserIDPath       string `json:"user_id_path"`
	IdentifierPath   string `json:"identifier_path"`
	// Where the login answer names the user (Strapi: user.documentId,
	// user.username, user.email); "" turns one off. Sent to sessionsvc,
	// which stores them sealed.
	UserDocumentIDPath string `json:"user_document_id_path"`
	UsernamePath       string `json:"username_path"`
	EmailPath          string `json:"email_path"`
}

// RefreshRoute is the refresh route: where the request carries the presented
// refresh token (body JSON path, or cookie) and where the response carries
// the new tokens.
type RefreshRoute struct {
	Route
	RequestTokenPath   string `json:"request_token_path"`
	RequestTokenCookie string `json:"request_token_cookie"`
	TokenPath          string `json:"token_path"`
	RefreshTokenPath   string `json:"refresh_token_path"`
}

// IdentityHeaders names the headers removed from client requests and then
// set from the verified token. An empty name disables that header.
type IdentityHeaders struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
}

// Verify says how tokens are verified.
type Verify struct {
	Mode              string   `json:"mode"`
	Secret            string   `json:"secret"`
	PublicKeys        []string `json:"public_keys"`
	MetadataNamespace string   `json:"metadata_namespace"`
	MetadataKey       string   `json:"metadata_key"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `json:"issuer"`
	// Audiences, when set, must contain the token's aud (a string) or one
	// of its elements (an array).
	Audiences []string `json:"audiences"`

	// Keys holds PublicKeys parsed: *rsa.PublicKey (rs256) or
	// *ecdsa.PublicKey on P-256 (es256), in configuration order.
	Keys []crypto.PublicKey `json:"-"`
}

// Config is the parsed, validated configuration.
type Config struct {
	Cluster                string          `json:"cluster"`
	Authority              string          `json:"authority"`
	InternalKey            string          `json:"internal_key"`
	Timeout                time.Duration   `json:"timeout"`
	TokenCookie            string          `json:"token_cookie"`
	SessionClaims          []string        `json:"session_claims"`
	UserClaims             []string        `json:"user_claims"`
	Login                  LoginRoute      `json:"login"`
	Refresh                RefreshRoute    `json:"refresh"`
	Logout                 Route           `json:"logout"`
	LastSeenInterval       time.Duration   `json:"last_seen_interval"`
	SyncInterval           time.Duration   `json:"sync_interval"`
	SyncPageSize           int             `json:"sync_page_size"`
	MaxStaleness           time.Duration   `json:"max_staleness"`
	StalePolicy            string          `json:"stale_policy"`
	LoginUnavailablePolicy string          `json:"login_unavailable_policy"`
	SkipPaths              []string        `json:"skip_paths"`
	RequireToken           bool            `json:"require_token"`
	EnforceExpiry          bool            `json:"enforce_expiry"`
	RequireExp             bool            `json:"require_exp"`
	IdentityHeaders        IdentityHeaders `json:"identity_headers"`
	TrustedProxyHops       int             `json:"trusted_proxy_hops"`
	Verify                 Verify          `json:"verify"`
	// StartupHold and RevokingRoutes: see revocation.go.
	StartupHold    time.Duration `json:"startup_hold" config:"nonnegative"`
	RevokingRoutes []string      `json:"revoking_routes"`
	// HeadersStopIteration says the host passes a paused headers callback
	// through as StopIteration (Envoy >= 1.35 with the wasm filter's
	// allow_on_headers_stop_iteration: true). The filter then holds login
	// and refresh response headers and answers a refusal with a clean 403.
	// Without it (the default; Istio, Envoy Gateway, older Envoy) the
	// headers go out at once and a refused answer is reset. On a host
	// without the opt-in, held headers see no body: the filter resumes them
	// two ticks later and goes on as on the defaults.
	HeadersStopIteration bool `json:"headers_stop_iteration"`
	// SyncWait: see syncwait.go.
	SyncWait time.Duration `json:"sync_wait" config:"nonnegative"`
	// PendingLogouts: see revocation.go.
	PendingLogouts int `json:"pending_logouts"`

	// Warnings are non-fatal remarks (e.g. an empty internal_key) the
	// plugin should log at start.
	Warnings []string `json:"-"`
}

// Default returns the configuration used for absent fields.
func Default() *Config {
	return &Config{
		Cluster:       "sessionsvc",
		Authority:     "",
		Timeout:       2 * time.Second,
		TokenCookie:   "jwt",
		SessionClaims: []string{"sid", "jti", "sessionId"},
		UserClaims:    []string{"sub", "id"},
		Login: LoginRoute{
			Route:              Route{Path: "/api/auth/local", Method: "POST"},
			TokenPath:          "jwt",
			RefreshTokenPath:   "refreshToken",
			UserIDPath:         "user.id",
			IdentifierPath:     "identifier",
			UserDocumentIDPath: "user.documentId",
			UsernamePath:       "user.username",
			EmailPath:          "user.email",
		},
		Refresh: RefreshRoute{
			Route:            Route{Path: "/api/auth/refresh", Method: "POST"},
			RequestTokenPath: "refreshToken",
			TokenPath:        "jwt",
			RefreshTokenPath: "refreshToken",
		},
		Logout:                 Route{Path: "/api/auth/logout", Method: "POST"},
		LastSeenInterval:       30 * time.Second,
		SyncInterval:           500 * time.Millisecond,
		SyncPageSize:           5000,
		MaxStaleness:           30 * time.Second,
		StalePolicy:            FailOpen,
		LoginUnavailablePolicy: LoginAllow,
		SkipPaths:              []string{"/healthz"},
		RequireToken:           false,
		EnforceExpiry:          true,
		IdentityHeaders:        IdentityHeaders{SessionID: "x-session-id", UserID: "x-user-id"},
		TrustedProxyHops:       0,
		Verify: Verify{
			Mode:              ModeNone,
			MetadataNamespace: "envoy.filters.http.jwt_authn",
			MetadataKey:       "jwt_payload",
		},
		StartupHold:    DefaultStartupHold,
		SyncWait:       DefaultSyncWait,
		RevokingRoutes: DefaultRevokingRoutes(),
		PendingLogouts: DefaultPendingLogouts,
	}
}

// FieldError is a configuration error about one field, named by JSON path.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return "config: " + e.Msg
	}
	return fmt.Sprintf("config: field %q: %s", e.Path, e.Msg)
}

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses and validates data. Empty (or all-whitespace) input yields
// the defaults. The returned error is a *FieldError.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	if len(data) > MaxConfigSize {
		return nil, fieldErr("", "configuration larger than %d bytes", MaxConfigSize)
	}
	s := strings.TrimSpace(string(data))
	if s != "" {
		if !gjson.Valid(s) {
			return nil, fieldErr("", "not valid JSON")
		}
		root := gjson.Parse(s)
		if !root.IsObject() {
			return nil, fieldErr("", "must be a JSON object")
		}
		if err := decodeRoot(cfg, root); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fieldFunc decodes one member's value.
type fieldFunc func(path string, v gjson.Result) error

// walkObject calls fields[key] for each member of obj, rejecting unknown and
// duplicate keys.
func walkObject(prefix string, obj gjson.Result, fields map[string]fieldFunc) error {
	if !obj.IsObject() {
		return fieldErr(prefix, "must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	var err error
	obj.ForEach(func(k, v gjson.Result) bool {
		path := k.Str
		if prefix != "" {
			path = prefix + "." + k.Str
		}
		f, ok := fields[k.Str]
		if !ok {
			err = fieldErr(path, "unknown field")
			return false
		}
		if seen[k.Str] {
			err = fieldErr(path, "duplicate field")
			return false
		}
		seen[k.Str] = true
		err = f(path, v)
		return err == nil
	})
	return err
}

func str(dst *string) fieldFunc {
	return func(path string, v gjson.Result) error {
		if v.Type != gjson.String {
			return fieldErr(path, "must be a string")
		}
		*dst = v.Str
		return nil
	}
}

func boolean(dst *bool) fieldFunc {
	return func(path string, v gjson.Result) error {
		if v.Type != gjson.True && v.Type != gjson.False {
			return fieldErr(path, "must be true or false")
		}
		*dst = v.Type == gjson.True
		return nil
	}
}

func integer(dst *int) fieldFunc {
	return func(path string, v gjson.Result) error {
		if v.Type != gjson.Number {
			return fieldErr(path, "must be an integer")
		}
		n, err := strconv.ParseInt(v.Raw, 10, 32)
		if err != nil {
			return fieldErr(path, "must be an integer, got %s", v.Raw)
		}
		*dst = int(n)
		return nil
	}
}

// durationField decodes a positive duration, or with zeroOK one that may be 0.
func durationField(dst *time.Duration, zeroOK bool) fieldFunc {
	return func(path string, v gjson.Result) error {
		if v.Type != gjson.String {
			return fieldErr(path, `must be a duration string such as "500ms" or "30s"`)
		}
		d, err := time.ParseDuration(v.Str)
		if err != nil {
			return fieldErr(path, "invalid duration %q", v.Str)
		}
		switch {
		case d < 0 && zeroOK:
			return fieldErr(path, "must not be negative, got %q", v.Str)
		case d <= 0 && !zeroOK:
			return fieldErr(path, "must be a positive duration, got %q", v.Str)
		}
		*dst = d
		return nil
	}
}

func strList(dst *[]string) fieldFunc {
	return func(path string, v gjson.Result) error {
		if !v.IsArray() {
			return fieldErr(path, "must be an array of strings")
		}
		out := []string{}
		var err error
		i := 0
		v.ForEach(func(_, e gjson.Result) bool {
			if e.Type != gjson.String {
				err = fieldErr(fmt.Sprintf("%s[%d]", path, i), "must be a string")
				return false
			}
			out = append(out, e.Str)
			i++
			return true
		})
		if err != nil {
			return err
		}
		*dst = out
		return nil
	}
}

func object(fields map[string]fieldFunc) fieldFunc {
	return func(path string, v gjson.Result) error {
		return walkObject(path, v, fields)
	}
}

// decodeRoot decodes root into c. Each member names a field by its json
// tag and is decoded as the field's Go type says (decoderFor).
func decodeRoot(c *Config, root gjson.Result) error {
	return walkObject("", root, fieldsOf(reflect.ValueOf(c).Elem(), map[string]fieldFunc{}))
}

// fieldsOf adds to m the decoders of struct v's fields by json name; the
// fields of an embedded struct without a json name count as v's own.
func fieldsOf(v reflect.Value, m map[string]fieldFunc) map[string]fieldFunc {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case name == "" && f.Anonymous:
			fieldsOf(v.Field(i), m)
		case name == "":
			panic("config: field " + t.Name() + "." + f.Name + " has no json name")
		default:
			m[name] = decoderFor(v.Field(i), f.Tag.Get("config") == "nonnegative")
		}
	}
	return m
}

// decoderFor is the decoder of a field: string, bool, int, a duration
// (positive, or with zeroOK 0 too), a list of strings or an object.
func decoderFor(v reflect.Value, zeroOK bool) fieldFunc {
	switch p := v.Addr().Interface().(type) {
	case *string:
		return str(p)
	case *bool:
		return boolean(p)
	case *int:
		return integer(p)
	case *time.Duration:
		return durationField(p, zeroOK)
	case *[]string:
		return strList(p)
	}
	if v.Kind() != reflect.Struct {
		panic("config: no decoder for a field of type " + v.Type().String())
	}
	return object(fieldsOf(v, map[string]fieldFunc{}))
}

func (c *Config) validate() error {
	if c.Cluster == "" {
		return fieldErr("cluster", "must not be empty")
	}
	if c.Authority == "" {
		c.Authority = c.Cluster
	}
	if strings.ContainsAny(c.Authority, " \t\r\n/") {
		return fieldErr("authority", "must be a host[:port], got %q", c.Authority)
	}
	if c.InternalKey == "" {
		c.Warnings = append(c.Warnings, `internal_key is empty: calls to sessionsvc are unauthenticated (dev only)`)
	}
	if c.TokenCookie != "" && !isToken(c.TokenCookie) {
		return fieldErr("token_cookie", "invalid cookie name %q", c.TokenCookie)
	}
	if err := claimList("session_claims", c.SessionClaims); err != nil {
		return err
	}
	if err := claimList("user_claims", c.UserClaims); err != nil {
		return err
	}
	if err := c.Login.Route.validate("login"); err != nil {
		return err
	}
	if c.Login.Path != "" && c.Login.TokenPath == "" {
		return fieldErr("login.token_path", "must not be empty when login.path is set")
	}
	if err := c.Refresh.Route.validate("refresh"); err != nil {
		return err
	}
	if c.Refresh.Path != "" {
		if c.Refresh.RequestTokenPath == "" && c.Refresh.RequestTokenCookie == "" {
			return fieldErr("refresh.request_token_path", "refresh.request_token_path or refresh.request_token_cookie must be set when refresh.path is set")
		}
		if c.Refresh.TokenPath == "" {
			return fieldErr("refresh.token_path", "must not be empty when refresh.path is set")
		}
	}
	if c.Refresh.RequestTokenCookie != "" && !isToken(c.Refresh.RequestTokenCookie) {
		return fieldErr("refresh.request_token_cookie", "invalid cookie name %q", c.Refresh.RequestTokenCookie)
	}
	if err := c.Logout.validate("logout"); err != nil {
		return err
	}
	if c.SyncPageSize < 1 || c.SyncPageSize > MaxSyncPageSize {
		return fieldErr("sync_page_size", "must be between 1 and %d, got %d", MaxSyncPageSize, c.SyncPageSize)
	}
	if c.StalePolicy != FailOpen && c.StalePolicy != FailClosed {
		return fieldErr("stale_policy", "must be one of fail_open, fail_closed")
	}
	if c.LoginUnavailablePolicy != LoginAllow && c.LoginUnavailablePolicy != LoginDeny {
		return fieldErr("login_unavailable_policy", "must be one of allow, deny")
	}
	for i, p := range c.SkipPaths {
		if !strings.HasPrefix(p, "/") {
			return fieldErr(fmt.Sprintf("skip_paths[%d]", i), "must start with \"/\", got %q", p)
		}
	}
	if c.IdentityHeaders.SessionID != "" && !isLowerHeaderName(c.IdentityHeaders.SessionID) {
		return fieldErr("identity_headers.session_id", "must be a lowercase header name, got %q", c.IdentityHeaders.SessionID)
	}
	if c.IdentityHeaders.UserID != "" && !isLowerHeaderName(c.IdentityHeaders.UserID) {
		return fieldErr("identity_headers.user_id", "must be a lowercase header name, got %q", c.IdentityHeaders.UserID)
	}
	if c.IdentityHeaders.SessionID != "" && c.IdentityHeaders.SessionID == c.IdentityHeaders.UserID {
		return fieldErr("identity_headers.user_id", "must differ from identity_headers.session_id")
	}
	if c.TrustedProxyHops < 0 || c.TrustedProxyHops > MaxTrustedProxyHops {
		return fieldErr("trusted_proxy_hops", "must be between 0 and %d, got %d", MaxTrustedProxyHops, c.TrustedProxyHops)
	}
	if err := c.validateSyncWait(); err != nil {
		return err
	}
	if err := c.validateRevocationTiming(); err != nil {
		return err
	}
	return c.Verify.validate()
}

func (r Route) validate(name string) error {
	if r.Path == "" {
		return nil
	}
	if !strings.HasPrefix(r.Path, "/") {
		return fieldErr(name+".path", "must start with \"/\", got %q", r.Path)
	}
	if strings.ContainsAny(r.Path, "?# \t") {
		return fieldErr(name+".path", "must be a path without query or spaces, got %q", r.Path)
	}
	if !isToken(r.Method) {
		return fieldErr(name+".method", "must be an HTTP method such as POST, got %q", r.Method)
	}
	return nil
}

// MaxClaimNames bounds session_claims and user_claims.
const MaxClaimNames = 16

func claimList(path string, names []string) error {
	if len(names) > MaxClaimNames {
		return fieldErr(path, "at most %d names", MaxClaimNames)
	}
	for i, n := range names {
		if n == "" {
			return fieldErr(fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
	}
	return nil
}

func (v *Verify) validate() error {
	switch v.Mode {
	case ModeNone, ModeJWTAuthnMetadata, ModeHS256, ModeRS256, ModeES256:
	default:
		return fieldErr("verify.mode", "must be one of none, jwt_authn_metadata, hs256, rs256, es256")
	}
	if v.Mode == ModeHS256 {
		if v.Secret == "" {
			return fieldErr("verify.secret", "must not be empty when verify.mode is hs256")
		}
	} else if v.Secret != "" {
		return fieldErr("verify.secret", "is only used with verify.mode hs256")
	}
	if v.Mode == ModeRS256 || v.Mode == ModeES256 {
		if len(v.PublicKeys) == 0 {
			return fieldErr("verify.public_keys", "must not be empty when verify.mode is %s", v.Mode)
		}
	} else if len(v.PublicKeys) != 0 {
		return fieldErr("verify.public_keys", "is only used with verify.mode rs256 or es256")
	}
	v.Keys = nil
	for i, p := range v.PublicKeys {
		k, err := parsePublicKey(p, v.Mode)
		if err != nil {
			return fieldErr(fmt.Sprintf("verify.public_keys[%d]", i), "%v", err)
		}
		v.Keys = append(v.Keys, k)
	}
	if strings.ContainsFunc(v.Issuer, isControl) {
		return fieldErr("verify.issuer", "must not contain control characters")
	}
	for i, a := range v.Audiences {
		if a == "" || strings.ContainsFunc(a, isControl) {
			return fieldErr(fmt.Sprintf("verify.audiences[%d]", i), "must be a non-empty string without control characters")
		}
	}
	if v.Mode == ModeJWTAuthnMetadata {
		if v.MetadataNamespace == "" {
			return fieldErr("verify.metadata_namespace", "must not be empty when verify.mode is jwt_authn_metadata")
		}
		if v.MetadataKey == "" {
			return fieldErr("verify.metadata_key", "must not be empty when verify.mode is jwt_authn_metadata")
		}
	}
	return nil
}

// parsePublicKey parses one PEM block (pubkey.ParsePEM) and checks that
// it is the only one and suits mode.
func parsePublicKey(p, mode string) (crypto.PublicKey, error) {
	key, rest, err := pubkey.ParsePEM([]byte(p))
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("trailing data after the PEM block (one key per entry)")
	}
	switch key.(type) {
	case *rsa.PublicKey:
		if mode != ModeRS256 {
			return nil, fmt.Errorf("RSA key given for verify.mode %s", mode)
		}
	case *ecdsa.PublicKey:
		if mode != ModeES256 {
			return nil, fmt.Errorf("ECDSA key given for verify.mode %s", mode)
		}
	}
	return key, nil
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isLowerHeaderName reports whether s is a token without uppercase letters
// and not a pseudo-header.
func isLowerHeaderName(s string) bool {
	if !isToken(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }
