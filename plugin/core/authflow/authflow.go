// Package authflow reads what the filter observes on the login, refresh and
// logout routes (tokens and user id from JSON bodies, with gjson paths from
// the configuration) and builds and parses the bodies of the matching
// internal API calls (protocol.RegisterRequest, RefreshRequest,
// RevokeRequest, FailedLogin; RegisterResponse, RefreshResponse), without
// encoding/json.
package authflow

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// MaxBodyLen bounds the bodies read on observed routes.
const MaxBodyLen = 1 << 20

// Errors.
var (
	ErrNotJSON     = errors.New("body is not JSON")
	ErrTooLarge    = errors.New("body too large")
	ErrNoToken     = errors.New("no token at the configured path")
	ErrBadDecision = errors.New(`answer has no valid "decision" (allow or deny)`)
	// ErrUnreadableBody: a multipart body that does not parse.
	ErrUnreadableBody = errors.New("body does not parse as its content type")
)

func parseBody(body []byte) (gjson.Result, error) {
	if len(body) > MaxBodyLen {
		return gjson.Result{}, ErrTooLarge
	}
	body = stripBOM(body) // (an answer too: a client's JSON reader strips it)
	if !jsonDepthOK(body) {
		return gjson.Result{}, ErrTooDeep
	}
	if !gjson.ValidBytes(body) {
		return gjson.Result{}, ErrNotJSON
	}
	return gjson.Parse(string(body)), nil
}

// stringAt returns the string at path, or an integer number's text.
func stringAt(r gjson.Result, path string) (string, bool) {
	if path == "" {
		return "", false
	}
	v := lastAt(r, path)
	switch v.Type {
	case gjson.String:
		return v.Str, v.Str != ""
	case gjson.Number:
		if _, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
			return v.Raw, true
		}
	}
	return "", false
}

// maxName bounds a user name read from a login answer.
const maxName = 320

// nameAt is the string at path, "" when absent, not a string, longer than
// maxName or holding control characters.
func nameAt(r gjson.Result, path string) string {
	if path == "" {
		return ""
	}
	v := lastAt(r, path)
	if v.Type != gjson.String || len(v.Str) > maxName {
		return ""
	}
	for i := 0; i < len(v.Str); i++ {
		if v.Str[i] < 0x20 || v.Str[i] == 0x7f {
			return ""
		}
	}
	return v.Str
}

// Login is what a successful login response carries.
type Login struct {
	Token        string
	RefreshToken string // "" when none
	UserID       string // "" when not found at user_id_path
	// The user's names (strings at the route's paths; "" when absent).
	UserDocumentID, Username, Email string
}

// ParseLogin reads the login response body: the token (required, a string
// at token_path), the refresh token and the user id (string or integer).
// A key repeated in the answer counts by its last value, as the client's
// JSON.parse reads it (so does ParseRefresh).
func ParseLogin(body []byte, route config.LoginRoute) (Login, error) {
	r, err := parseBody(body)
	if err != nil {
		return Login{}, fmt.Errorf("login response: %w", err)
	}
	var l Login
	v := lastAt(r, route.TokenPath)
	if v.Type != gjson.String || v.Str == "" {
		return Login{}, fmt.Errorf("login response: %w %q", ErrNoToken, route.TokenPath)
	}
	l.Token = v.Str
	if route.RefreshTokenPath != "" {
		if v := lastAt(r, route.RefreshTokenPath); v.Type == gjson.String {
			l.RefreshToken = v.Str
		}
	}
	l.UserID, _ = stringAt(r, route.UserIDPath)
	l.UserDocumentID = nameAt(r, route.UserDocumentIDPath)
	l.Username = nameAt(r, route.UsernamePath)
	l.Email = nameAt(r, route.EmailPath)
	return l, nil
}

// Refresh is what a successful refresh response carries.
type Refresh struct {
	Token        string
	RefreshToken string
}

// ParseRefresh reads the refresh response body (new token required).
func ParseRefresh(body []byte, route config.RefreshRoute) (Refresh, error) {
	r, err := parseBody(body)
	if err != nil {
		return Refresh{}, fmt.Errorf("refresh response: %w", err)
	}
	v := lastAt(r, route.TokenPath)
	if v.Type != gjson.String || v.Str == "" {
		return Refresh{}, fmt.Errorf("refresh response: %w %q", ErrNoToken, route.TokenPath)
	}
	out := Refresh{Token: v.Str}
	if route.RefreshTokenPath != "" {
		if v := lastAt(r, route.RefreshTokenPath); v.Type == gjson.String {
			out.RefreshToken = v.Str
		}
	}
	return out, nil
}

// PresentedRefreshTokens returns the refresh tokens the client presented on
// the refresh route, distinct and non-empty: first the one the app reads,
// then every other a body parser could hand it, so that the filter refuses
// the refresh when any of them is revoked. The body is read as the app's
// parser reads it, by its content type, a UTF-8 BOM aside (body.go):
//
//   - application/x-www-form-urlencoded: the fields named
//     request_token_path as qs reads names (a.b is also a[b], .a.b and
//     [a][b]), the first first (a JSON text sent as a form is a form:
//     `["&refreshToken=t&"]`);
//   - multipart/*: the parts so named, whatever their disposition or file
//     name, decoded, the first first;
//   - anything else: JSON at request_token_path, the last of a repeated
//     key first (as JavaScript's JSON.parse reads it), then the others.
//
// Then the cookie request_token_cookie, each value it has, as it is and
// percent-decoded. (nil, nil) when there is none; an error when the body
// is needed and does not read as its type, or reads differently in
// different parsers — even with a cookie configured, as the app may read
// the body first.
func PresentedRefreshTokens(body []byte, contentType, cookieHeader string, route config.RefreshRoute) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if route.RequestTokenPath != "" && len(body) > 0 {
		vs, err := bodyFields(body, contentType, route.RequestTokenPath)
		if err != nil {
			// Even with a cookie configured: the app may read the body
			// first (Strapi's getIncomingRefreshToken does).
			return nil, fmt.Errorf("refresh request: %w", err)
		}
		for _, v := range vs {
			add(v)
		}
	}
	if route.RequestTokenCookie != "" {
		for _, v := range token.CookieValues(cookieHeader, route.RequestTokenCookie) {
			add(v)
			if strings.Contains(v, "%") { // as a cookie parser that percent-decodes reads it
				if u, err := url.PathUnescape(v); err == nil {
					add(u)
				}
			}
		}
	}
	if len(out) > MaxPresentedTokens {
		// Each is checked: thousands of decoys would hold the worker.
		return nil, fmt.Errorf("refresh request: %w", ErrTooManyTokens)
	}
	return out, nil
}

// MaxPresentedTokens bounds the distinct refresh tokens one refresh may
// present (a client sends one).
const MaxPresentedTokens = 8

// ErrTooManyTokens: a refresh presents more than MaxPresentedTokens tokens.
var ErrTooManyTokens = fmt.Errorf("more than %d distinct refresh tokens", MaxPresentedTokens)

// bodyFields are the string values at path in a request body read as its
// content type says (see PresentedRefreshTokens), the app's first.
func bodyFields(body []byte, contentType, path string) ([]string, error) {
	body = stripBOM(body)
	var vs []string
	switch {
	case isForm(contentType):
		vs = formValues(body, path, maxFieldValues)
	case isMultipart(contentType):
		var err error
		if vs, err = multipartValues(body, contentType, path, maxFieldValues); err != nil {
			return nil, err
		}
	default:
		r, err := parseBody(body)
		if err != nil {
			return nil, err
		}
		all := allAt(r, path, maxFieldValues)
		if len(all) > maxFieldValues {
			return nil, ErrTooManyTokens
		}
		if v := lastAt(r, path); v.Type == gjson.String {
			vs = append(vs, v.Str)
		}
		for _, v := range all {
			if v.Type == gjson.String {
				vs = append(vs, v.Str)
			}
		}
		return vs, nil // (the app's value, the last, is in all too)
	}
	if len(vs) > maxFieldValues {
		return nil, ErrTooManyTokens
	}
	return vs, nil
}

// maxFieldValues bounds the values a refresh body may give its token path
// (repeated keys and fields) before the refresh is refused, so that a body
// of thousands of decoys costs one bounded pass.
const maxFieldValues = 4 * MaxPresentedTokens

// SetCookieValue is the value a response's Set-Cookie header values set
// for the cookie name (the last one that sets it, as a browser keeps it),
// as the client will send it back; "" when none does, or one clears it.
func SetCookieValue(setCookies []string, name string) string {
	v := ""
	for _, sc := range setCookies {
		pair, _, _ := strings.Cut(sc, ";")
		k, val, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(k) != name {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		v = val
	}
	return v
}

// TokenInfo are a token's keys and the claims the calls carry. The token is
// not verified (it comes from the upstream's own response, or is only used
// to name a session).
type TokenInfo struct {
	Keys   []string // "sid:<v>" when present, then "fp:<...>"
	Claims token.Claims
	JWT    bool // the token decoded as a JWT
}

// Inspect derives a token's keys and claims. An opaque (non-JWT) token
// gets its fp key only.
func Inspect(tok string, names token.ClaimNames) TokenInfo {
	var info TokenInfo
	if parts, err := token.Split(tok); err == nil {
		buf := make([]byte, token.DecodedLen(len(parts.Payload)))
		if n, err := token.DecodeSegment(buf, parts.Payload); err == nil {
			if c, err := token.ParseClaims(string(buf[:n]), names); err == nil {
				info.Claims, info.JWT = c, true
			}
		}
	}
	info.Keys = token.Keys(tok, info.Claims)
	return info
}

// FingerprintKeys returns []string{"fp:<...>"} for tok, nil for "".
func FingerprintKeys(tok string) []string {
	if tok == "" {
		return nil
	}
	return []string{token.FingerprintKey(tok)}
}

// Register builds the RegisterRequest for a login. userID falls back to the
// token's user claim when the body had none.
func Register(l Login, names token.ClaimNames, ip, userAgent, route, locale string) protocol.RegisterRequest {
	access := Inspect(l.Token, names)
	req := protocol.RegisterRequest{
		UserID:    l.UserID,
		Keys:      access.Keys,
		IP:        ip,
		UserAgent: userAgent,
		Route:     route,
		Locale:    locale,

		UserDocumentID: l.UserDocumentID,
		Username:       l.Username,
		Email:          l.Email,
	}
	if req.UserID == "" {
		req.UserID = access.Claims.UserID
	}
	if access.Claims.HasIssuedAt {
		req.IssuedAt = access.Claims.IssuedAt
	}
	if access.Claims.HasExpiresAt {
		req.ExpiresAt = access.Claims.ExpiresAt
	}
	req.RefreshKeys, req.RefreshExpiresAt = refreshKeys(l.RefreshToken, names)
	return req
}

// refreshKeys are the keys a refresh token is known by and its expiry
// (0 when it has none); nothing for no token.
func refreshKeys(refresh string, names token.ClaimNames) ([]string, int64) {
	if refresh == "" {
		return nil, 0
	}
	var exp int64
	if rt := Inspect(refresh, names); rt.Claims.HasExpiresAt {
		exp = rt.Claims.ExpiresAt
	}
	return FingerprintKeys(refresh), exp
}

// RefreshCall builds the RefreshRequest after the refresh route answered
// status; r is the parsed response (zero when not 2xx).
func RefreshCall(presented string, status int, r Refresh, names token.ClaimNames, ip, userAgent string) protocol.RefreshRequest {
	req := protocol.RefreshRequest{Status: status, IP: ip, UserAgent: userAgent}
	req.PresentedKeys = Inspect(presented, names).Keys
	if status >= 200 && status < 300 && r.Token != "" {
		access := Inspect(r.Token, names)
		req.Keys = access.Keys
		if access.Claims.HasExpiresAt {
			req.ExpiresAt = access.Claims.ExpiresAt
		}
		req.RefreshKeys, req.RefreshExpiresAt = refreshKeys(r.RefreshToken, names)
	}
	return req
}

// ---- JSON encoding ----

// encode writes a protocol request as JSON, as encoding/json would but
// without it in the module: each field under its json name in declaration
// order, an "omitempty" field left out when empty, except that a list
// without omitempty is sent as [] when nil (sessionsvc requires it).
// Fields may be strings, integers or lists of strings, as every request
// the plugin sends is; any other kind is a programming error, caught by
// the tests that encode every request.
func encode(v any) []byte {
	rv := reflect.ValueOf(v)
	t := rv.Type()
	b := append(make([]byte, 0, 256), '{')
	for i := range t.NumField() {
		f, fv := t.Field(i), rv.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if empty := fv.IsZero() || fv.Kind() == reflect.Slice && fv.Len() == 0; empty && strings.Contains(","+opts+",", ",omitempty,") {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = gjson.AppendJSONString(b, name)
		b = append(b, ':')
		switch {
		case fv.Kind() == reflect.String:
			b = gjson.AppendJSONString(b, fv.String())
		case fv.CanInt():
			b = strconv.AppendInt(b, fv.Int(), 10)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
			b = append(b, '[')
			for j := range fv.Len() {
				if j > 0 {
					b = append(b, ',')
				}
				b = gjson.AppendJSONString(b, fv.Index(j).String())
			}
			b = append(b, ']')
		default:
			panic("authflow: cannot encode " + t.Name() + "." + f.Name + " of type " + fv.Type().String())
		}
	}
	return append(b, '}')
}

// EncodeRegister encodes r as its JSON wire form.
func EncodeRegister(r protocol.RegisterRequest) []byte { return encode(r) }

// EncodeRefresh encodes r as its JSON wire form.
func EncodeRefresh(r protocol.RefreshRequest) []byte { return encode(r) }

// EncodeRevoke encodes r as its JSON wire form.
func EncodeRevoke(r protocol.RevokeRequest) []byte { return encode(r) }

// EncodeFailedLogin encodes f as its JSON wire form.
func EncodeFailedLogin(f protocol.FailedLogin) []byte { return encode(f) }

// ---- answers ----

func decision(r gjson.Result) (string, error) {
	d := r.Get("decision")
	if d.Type != gjson.String || (d.Str != protocol.DecisionAllow && d.Str != protocol.DecisionDeny) {
		return "", ErrBadDecision
	}
	return d.Str, nil
}

// parseAnswer reads an answer of sessionsvc's: a JSON object with a valid
// decision; what names the answer in errors.
func parseAnswer(what string, body []byte) (gjson.Result, string, error) {
	r, err := parseBody(body)
	if err != nil || !r.IsObject() {
		return gjson.Result{}, "", fmt.Errorf("%s: %w", what, ErrNotJSON)
	}
	d, err := decision(r)
	if err != nil {
		return gjson.Result{}, "", fmt.Errorf("%s: %w", what, err)
	}
	return r, d, nil
}

func optString(r gjson.Result, name string) string {
	if v := r.Get(name); v.Type == gjson.String {
		return v.Str
	}
	return ""
}

// ParseRegisterResponse parses sessionsvc's answer to a registration. The
// decision is required; other fields are optional (wrong types ignored).
func ParseRegisterResponse(body []byte) (protocol.RegisterResponse, error) {
	r, d, err := parseAnswer("register answer", body)
	if err != nil {
		return protocol.RegisterResponse{}, err
	}
	out := protocol.RegisterResponse{
		SessionID: optString(r, "sessionId"),
		Decision:  d,
		Reason:    optString(r, "reason"),
		Message:   optString(r, "message"),
	}
	if v := r.Get("score"); v.Type == gjson.Number {
		out.Score = int(v.Int())
	}
	return out, nil
}

// ParseRefreshResponse parses sessionsvc's answer to a refresh.
func ParseRefreshResponse(body []byte) (protocol.RefreshResponse, error) {
	r, d, err := parseAnswer("refresh answer", body)
	if err != nil {
		return protocol.RefreshResponse{}, err
	}
	return protocol.RefreshResponse{SessionID: optString(r, "sessionId"), Decision: d, Reason: optString(r, "reason")}, nil
}
