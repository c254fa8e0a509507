// Package decide turns a request (path, method, token headers) into a
// decision against the revocation state: pass, 401 or 503, with the
// termination reason, the session key used for activity marks and the
// identity to inject. It also builds the JSON body of a refusal.
//
// An Engine is built once per VM from the configuration and reused for every
// request; it owns the decode buffers, so it is not safe for concurrent use,
// and the strings of a Decision alias those buffers: they are valid until
// the Engine's next call (use Decision.Detach to keep them longer).
//
// The request path passes large structs by pointer and never returns,
// copies or zeroes one as a whole: in a Wasm build every copy of a struct
// over 16 bytes is a memory.copy and every zeroing of one over 32 bytes a
// memory.fill (cmd/compile's Wasm.rules: Move, Zero), which the runtimes
// run as calls out of the compiled code (wazero: a call to Go's memmove, a
// fill as a loop of them; V8: a C call). A function returning a struct with
// pointers also zeroes its result slot on entry (Wasm's stack-based ABI).
// So DecideView decides into the Engine's own Decision, reset field by field.
package decide

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/jwtverify"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// HeaderTerminatedReason carries the reason of a refusal to the client.
const HeaderTerminatedReason = "x-session-terminated-reason"

// Reasons of refusals beyond the protocol's termination reasons.
const (
	ReasonInvalidToken = "invalid_token" // malformed token or failed verification
	ReasonMissingToken = "missing_token" // require_token and no token
	ReasonStale        = "stale"         // fail_closed and the state is stale
	ReasonRevoked      = "revoked"       // a revoked key without a reason in the feed
	// ReasonHeadersTooLarge: the request headers could not be read whole
	// (larger than the filter reads, 16 MiB serialised): 431.
	ReasonHeadersTooLarge = "headers_too_large"
)

// ExpiryLeeway is the clock-skew leeway, in seconds, for exp and nbf.
const ExpiryLeeway = 60

// Action is what to do with the request.
type Action uint8

// Actions.
const (
	Pass Action = iota
	Refuse
)

func (a Action) String() string {
	if a == Refuse {
		return "refuse"
	}
	return "pass"
}

// Decision is the outcome for one request.
type Decision struct {
	Action  Action
	Status  int    // 401, 403 or 503 when refused; 0 when passed
	Reason  string // refusal reason (protocol.Reason* or Reason* above)
	Message string // human-readable message for the refusal body
	// Err is the internal cause of an invalid_token refusal, for logs only.
	Err error

	Skipped  bool         // the path is in skip_paths: nothing was checked
	Source   token.Source // where the token came from (SourceNone: no token)
	HasToken bool

	// SessionKey is "sid:<v>" when the token carries a session claim, else
	// "fp:<fingerprint>": the key to throttle and report activity under.
	SessionKey string
	// SessionHash is protocol.KeyHash(SessionKey) (0 when it is ""): for
	// per-session caches that need not hash the key again.
	SessionHash uint64
	SessionID   string // the session claim's value ("" when none)
	UserID      string // the user claim's value ("" when none)
	ExpiresAt   int64  // the token's exp (0 when none)
}

// Detach returns d with its strings copied, valid after the Engine's next call.
func (d Decision) Detach() Decision {
	d.SessionKey = strings.Clone(d.SessionKey)
	d.SessionID = strings.Clone(d.SessionID)
	d.UserID = strings.Clone(d.UserID)
	return d
}

// Request is what Decide looks at. Header values are "" when absent.
type Request struct {
	Path          string // :path (a query string is ignored)
	Method        string // :method
	Authorization string
	Cookie        string
	// Metadata is, in mode jwt_authn_metadata, the verified JWT payload (a
	// JSON object) that jwt_authn put in dynamic metadata; "" when absent.
	Metadata string
	// LastSync is when the revocation state was last refreshed successfully
	// (the plugin's start time before the first sync).
	LastSync time.Time
	// Repeated is set by AddAuthorization and AddCookie when the headers
	// carry more than one distinct token: the request is refused.
	Repeated bool

	hasAuth     bool
	cookieFound bool
	cookieTok   string
}

// Reset empties r for the next request, field by field (see the package
// comment): a caller keeps one Request and reuses it.
func (r *Request) Reset() {
	r.Path, r.Method, r.Authorization, r.Cookie, r.Metadata = "", "", "", "", ""
	r.LastSync, r.Repeated = time.Time{}, false
	r.hasAuth, r.cookieFound, r.cookieTok = false, false, ""
}

// MayHoldToken reports whether Decide may find a token (or a verified
// payload) in r: an Authorization header, the token cookie, tokens marked
// Repeated, jwt_authn's metadata. When it is false, Decide answers without
// reading the revocation state or r.LastSync (Pass, Skipped or 401
// missing_token, never HasToken): the caller may skip bringing them up to
// date.
func (r *Request) MayHoldToken() bool {
	return r.Authorization != "" || r.Cookie != "" || r.Repeated || r.Metadata != ""
}

// AddAuthorization records one Authorization header entry, in the order
// the host hands them over. The first is the one decided on; a later one
// naming a different bearer token (or a bearer token next to another
// scheme) marks the request Repeated. An entry holding several values
// joined with "," (Envoy's header map joins a repeated O(1) header so:
// source/common/http/header_map_impl.cc insertByKey/appendToHeader) is one
// value whose token has a ',' and fails the character check. No allocation.
func (r *Request) AddAuthorization(v string) {
	if !r.hasAuth {
		r.Authorization, r.hasAuth = v, true
		return
	}
	if v == r.Authorization {
		return
	}
	t1, ok1 := token.BearerToken(r.Authorization)
	t2, ok2 := token.BearerToken(v)
	if (ok1 || ok2) && (ok1 != ok2 || t1 != t2) {
		r.Repeated = true
	}
}

// AddCookie records one Cookie header entry (cookieName "": cookies carry
// no token). Envoy hands cookies over as one entry joined with "; " (its
// HTTP/2 codec reassembles cookie crumbs so: source/common/http/http2/
// codec_impl.cc; the header map joins a repeated inline cookie header with
// "; ": header_map_impl.cc delimiterByHeader) or as several entries (HTTP/1
// lines): the token cookie may appear in any of them, more than once. Req.Cookie
// becomes the first entry holding the token cookie; a different value of
// it anywhere marks the request Repeated. No allocation.
func (r *Request) AddCookie(v, cookieName string) {
	if cookieName == "" {
		return
	}
	tok, found, repeated := token.CookieToken(v, cookieName)
	if repeated {
		r.Repeated = true
	}
	if !found {
		return
	}
	if !r.cookieFound {
		r.Cookie, r.cookieFound, r.cookieTok = v, true, tok
	} else if tok != r.cookieTok {
		r.Repeated = true
	}
}

// Engine decides requests for one configuration.
type Engine struct {
	cfg      *config.Config
	verifier *jwtverify.Verifier
	dec      *token.Decoder
	sidKey   []byte
	fpKey    [3 + token.FingerprintLen]byte
	fpSum    [32]byte
	cache    *tokenCache
	// local are the revocations this proxy made itself that the feed
	// does not carry yet (SetLocal): consulted beside the state.
	local *revocation.Local

	// the last JOSE header segment seen and its alg: issuers send the same
	// header on every token, so it is decoded once.
	lastHeader    [256]byte
	lastHeaderLen int
	lastAlg       string

	out Decision // DecideView's answer (see the package comment)
}

// New builds an Engine for a validated configuration.
func New(cfg *config.Config) (*Engine, error) {
	v, err := jwtverify.New(cfg.Verify)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	return &Engine{
		cfg:      cfg,
		verifier: v,
		dec:      token.NewDecoder(token.ClaimNames{Session: cfg.SessionClaims, User: cfg.UserClaims}),
		sidKey:   make([]byte, 0, 128),
		cache:    newTokenCache(DefaultTokenCacheBytes),
	}, nil
}

// SetTokenCache sets the byte budget of the verified-token cache (0
// disables it). The default is DefaultTokenCacheBytes.
func (e *Engine) SetTokenCache(maxBytes int) { e.cache = newTokenCache(maxBytes) }

// SetLocal makes the Engine consult l (the proxy's local revocations, see
// revocation.Local) beside the state it is given: a token one of l's
// entries names is refused as revoked. The caller keeps l up to date in
// place; nil: none. An empty list costs one comparison per decision.
func (e *Engine) SetLocal(l *revocation.Local) { e.local = l }

// ClaimNames returns the configured claim names (for authflow helpers).
func (e *Engine) ClaimNames() token.ClaimNames { return e.dec.Names }

// Config returns the Engine's configuration.
func (e *Engine) Config() *config.Config { return e.cfg }

// Skip reports whether path (query ignored) is under one of skip_paths. A
// prefix matches at a segment boundary: "/healthz" matches "/healthz" and
// "/healthz/live" but not "/healthzx"; a prefix ending in "/" matches
// anything below it. A path that is not in normal form never skips: one
// holding a dot segment ("/healthz/../api/x"), an encoded or backslash
// separator (%2F, %5C, "\"), an encoded dot (%2E) or an empty segment
// ("//") may name something else to the app than it seems to here (Envoy
// normalises paths before the filter only when the connection manager is
// told to: normalize_path, merge_slashes, path_with_escaped_slashes_action).
func (e *Engine) Skip(path string) bool {
	path = stripQuery(path)
	for _, p := range e.cfg.SkipPaths {
		if strings.HasPrefix(path, p) {
			if len(path) == len(p) || p[len(p)-1] == '/' || path[len(p)] == '/' {
				return normalPath(path)
			}
		}
	}
	return false
}

// normalPath reports whether path is in the normal form Envoy's path
// normalisation produces, with nothing an app could read differently: no
// "." or ".." segment (also before a ";" parameter, as servlet containers
// read "..;"), no "//", no "\", no %2F, %5C or %2E (any case), no %00.
func normalPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) {
			c := path[i]
			switch c {
			case '\\':
				return false
			case '%':
				if i+2 >= len(path) {
					return false
				}
				h, l := path[i+1], path[i+2]|0x20
				if h == '2' && (l == 'f' || l == 'e') || h == '5' && l == 'c' || h == '0' && l == '0' {
					return false
				}
			}
			if c != '/' {
				continue
			}
		}
		seg := path[segStart:i]
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		if seg == "." || seg == ".." || (seg == "" && i < len(path)) {
			return false
		}
		segStart = i + 1
	}
	return true
}

// stripQuery drops the query string and fragment. A plain loop: in Wasm,
// strings.IndexAny costs several function calls per byte on short paths.
func stripQuery(p string) string {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '?' || c == '#' {
			return p[:i]
		}
	}
	return p
}

// Route tells which observed route a request is on.
type Route uint8

// Routes.
const (
	RouteNone Route = iota
	RouteLogin
	RouteRefresh
	RouteLogout
)

// Route returns the observed route of method and path (query ignored).
// A path is the route's whenever an app's router could take it for it:
// case, percent-encoded unreserved characters, repeated and trailing
// slashes aside (routePathMatches); a refresh or logout the filter did not
// recognise would go unchecked and unreported.
func (e *Engine) Route(method, path string) Route {
	path = stripQuery(path)
	c := e.cfg
	switch {
	case isRoute(c.Login.Route, method, path):
		return RouteLogin
	case isRoute(c.Refresh.Route, method, path):
		return RouteRefresh
	case isRoute(c.Logout, method, path):
		return RouteLogout
	}
	return RouteNone
}

// isRoute reports whether method and path (query stripped) are r's.
func isRoute(r config.Route, method, path string) bool {
	return r.Path != "" && method == r.Method && (path == r.Path || routePathMatches(path, r.Path))
}

// result resets the Engine's Decision (a pass without a token) and returns
// it.
func (e *Engine) result() *Decision {
	return e.pass(token.SourceNone, false, "", 0, "", "", 0)
}

// pass sets every field of the Engine's Decision, once (each store of a
// string or an error costs a write-barrier check): a pass with what is
// given. Field by field: zeroing it whole is a memory.fill in Wasm.
func (e *Engine) pass(src token.Source, hasToken bool, sessionKey string, sessionHash uint64, sessionID, userID string, exp int64) *Decision {
	d := &e.out
	d.Action, d.Status, d.Reason, d.Message, d.Err = Pass, 0, "", "", nil
	d.Skipped, d.Source, d.HasToken = false, src, hasToken
	d.SessionKey, d.SessionHash, d.SessionID, d.UserID, d.ExpiresAt = sessionKey, sessionHash, sessionID, userID, exp
	return d
}

// refuse resets the Engine's Decision to a refusal.
func (e *Engine) refuse(status int, reason, msg string) *Decision {
	d := e.result()
	d.Action, d.Status, d.Reason, d.Message = Refuse, status, reason, msg
	return d
}

// Decide is DecideView's decision, copied.
func (e *Engine) Decide(now time.Time, req *Request, st *revocation.State) Decision {
	return *e.DecideView(now, req, st)
}

// DecideView decides one request at now against st. It does not allocate
// for a request that passes. The Decision it returns is the Engine's own:
// valid until the Engine's next call, like the strings in it.
//
// The token is the Authorization bearer token, else the token cookie. A
// request carrying more than one distinct token where the app may read
// either (see Request.AddAuthorization, AddCookie) is refused as
// invalid_token. A header token and a cookie token may differ: the header's
// decides, but the cookie's is checked too, and a cookie token that is
// invalid or revoked (expiry aside) refuses the request as well.
func (e *Engine) DecideView(now time.Time, req *Request, st *revocation.State) *Decision {
	if len(e.cfg.SkipPaths) > 0 && e.Skip(req.Path) {
		d := e.result()
		d.Skipped = true
		return d
	}
	var cookieTok string
	var cookieFound, repeated bool
	switch {
	case req.cookieFound: // AddCookie already read it (and marked Repeated)
		cookieTok, cookieFound = req.cookieTok, true
	case e.cfg.TokenCookie != "" && req.Cookie != "": // set directly
		cookieTok, cookieFound, repeated = token.CookieToken(req.Cookie, e.cfg.TokenCookie)
	}
	if repeated || req.Repeated {
		d := e.refuse(401, ReasonInvalidToken, "Invalid token")
		d.Err, d.HasToken = token.ErrRepeatedToken, true
		return d
	}
	// Find skips the per-character check: a cached token was checked when
	// it was first seen; others are checked below. The cookie was read
	// above (once).
	tok, src, err := token.Find(req.Authorization, "", "")
	if src == token.SourceNone && cookieTok != "" {
		tok, src = cookieTok, token.SourceCookie
		if len(tok) > token.MaxTokenLen {
			err = token.ErrTooLong
		}
	}
	metadataMode := e.cfg.Verify.Mode == config.ModeJWTAuthnMetadata
	if src == token.SourceNone && !(metadataMode && req.Metadata != "") {
		if e.cfg.RequireToken {
			return e.refuse(401, ReasonMissingToken, "Missing token")
		}
		return e.result()
	}
	if err != nil {
		d := e.refuse(401, ReasonInvalidToken, "Invalid token")
		d.Err, d.Source, d.HasToken = err, src, true
		return d
	}
	if e.cfg.StalePolicy == config.FailClosed && now.Sub(req.LastSync) > e.cfg.MaxStaleness {
		d := e.refuse(503, ReasonStale, "Session service unavailable")
		d.Source, d.HasToken = src, true
		return d
	}
	// The cookie token next to a different header token is checked first:
	// its keys are derived into the Engine's buffers, which the header
	// token's decision then reuses.
	if src == token.SourceHeader && cookieFound && cookieTok != "" && cookieTok != tok {
		if d := e.evaluate(now, cookieTok, token.SourceCookie, st, true); d.Action == Refuse {
			return d
		}
	}

	if metadataMode {
		var claims token.Claims
		if req.Metadata == "" {
			err = errMetadataMissing
		} else if claims, err = token.ParseClaims(req.Metadata, e.dec.Names); err == nil {
			err = e.claimsAllowed(&claims)
		}
		if err == nil && tok != "" {
			// jwt_authn verified the token; its fingerprint must still
			// name it, so only its canonical spelling is accepted.
			err = token.CheckCanonical(tok)
		}
		if err != nil {
			d := e.refuse(401, ReasonInvalidToken, "Invalid token")
			d.Err, d.Source, d.HasToken = err, src, true
			return d
		}
		k := e.keysOf(tok, claims)
		return e.check(now.Unix(), &k, src, &claims, st, false)
	}
	return e.evaluate(now, tok, src, st, false)
}

// evaluate verifies tok (or finds it in the cache) and checks it against
// st. A companion (the cookie token next to a header token) is not refused
// for expiry or not-before: the app cannot use an expired token either.
func (e *Engine) evaluate(now time.Time, tok string, src token.Source, st *revocation.State, companion bool) *Decision {
	ce, h := e.cache.get(tok)
	if ce != nil {
		return e.check(now.Unix(), &ce.keys, src, &ce.claims, st, companion)
	}
	claims, err := e.tokenClaims(tok)
	if err != nil {
		d := e.refuse(401, ReasonInvalidToken, "Invalid token")
		d.Err, d.Source, d.HasToken = err, src, true
		return d
	}
	k := e.keysOf(tok, claims)
	e.cache.put(h, tok, claims, k, k.fp)
	return e.check(now.Unix(), &k, src, &claims, st, companion)
}

// Errors of the claims checks (invalid_token).
var (
	errIssuer    = errors.New("token iss is not the configured verify.issuer")
	errAudience  = errors.New("token aud names none of verify.audiences")
	errNoExp     = errors.New("token has no exp and require_exp is set")
	errFutureIat = errors.New("token iat is in the future")
)

// claimsAllowed applies the time-independent claims rules of the
// configuration (issuer, audiences, require_exp).
func (e *Engine) claimsAllowed(c *token.Claims) error {
	v := &e.cfg.Verify
	if v.Issuer != "" && c.Issuer != v.Issuer {
		return errIssuer
	}
	if len(v.Audiences) > 0 && !c.AudienceMatches(v.Audiences) {
		return errAudience
	}
	if e.cfg.RequireExp && !c.HasExpiresAt {
		return errNoExp
	}
	return nil
}

// tokenKeys are the lookup keys of one token.
type tokenKeys struct {
	sid    string               // "sid:<v>", "" when the token has no session claim
	hashes revocation.TokenKeys // the keys' hashes (and iat), computed once per token
	// clear is the stamp of the state this token was last found clear in
	// (zero: never): while the state keeps that stamp the answer stands,
	// and the lookups are skipped.
	clear revocation.Stamp
	fpKey string    // "fp:<fingerprint>", "" without a raw token
	fp    *[32]byte // the raw SHA-256 behind fpKey, nil without a raw token
}

// keysOf derives the keys of tok (possibly "") and its claims into the
// Engine's buffers.
func (e *Engine) keysOf(tok string, c token.Claims) tokenKeys {
	k := tokenKeys{hashes: revocation.TokenKeys{IssuedAt: c.IssuedAt, HasIssuedAt: c.HasIssuedAt}}
	if tok != "" {
		e.fpSum = token.Sum(tok)
		k.fp = &e.fpSum
		k.fpKey = bytesString(token.AppendFingerprintKeySum(e.fpKey[:0], &e.fpSum))
		k.hashes.Fingerprint = protocol.FingerprintHash(&e.fpSum)
	}
	if c.UserID != "" {
		k.hashes.User = revocation.UserHash(c.UserID)
	}
	if c.SessionID != "" {
		e.sidKey = token.AppendSessionKey(e.sidKey[:0], c.SessionID)
		k.sid = bytesString(e.sidKey)
		k.hashes.Session = protocol.KeyHash(k.sid)
	}
	return k
}

var errMetadataMissing = fmt.Errorf("token present but jwt_authn left no verified payload in metadata")

// tokenClaims splits, verifies and decodes tok.
func (e *Engine) tokenClaims(tok string) (token.Claims, error) {
	// Only the canonical spelling (RFC 7515 base64url, no padding, unused
	// bits zero) is accepted, whatever the verification mode: the
	// fingerprint of the raw token then names the token.
	// CheckCanonical checks every character (base64url and the two dots).
	if err := token.CheckCanonical(tok); err != nil {
		return token.Claims{}, err
	}
	parts, _ := token.Split(tok)
	alg, err := e.alg(parts.Header)
	if err != nil {
		return token.Claims{}, fmt.Errorf("token header: %w", err)
	}
	if err := e.verifier.Verify(alg, parts); err != nil {
		return token.Claims{}, err
	}
	c, err := e.dec.Claims(parts.Payload)
	if err != nil {
		return token.Claims{}, fmt.Errorf("token payload: %w", err)
	}
	if err := e.claimsAllowed(&c); err != nil {
		return token.Claims{}, err
	}
	return c, nil
}

// alg returns the JOSE header's alg, decoding the header only when it
// differs from the previous one.
func (e *Engine) alg(seg string) (string, error) {
	if e.lastHeaderLen > 0 && string(e.lastHeader[:e.lastHeaderLen]) == seg {
		return e.lastAlg, nil
	}
	alg, _, err := e.dec.Header(seg)
	if err != nil {
		return "", err
	}
	if len(seg) <= len(e.lastHeader) {
		e.lastHeaderLen = copy(e.lastHeader[:], seg)
		e.lastAlg = strings.Clone(alg)
	}
	return alg, nil
}

// check applies the revocation state and time rules to verified claims
// (companion: only the revocation state and iat).
func (e *Engine) check(now int64, k *tokenKeys, src token.Source, c *token.Claims, st *revocation.State, companion bool) *Decision {
	var key string
	var hash uint64
	if k.sid != "" {
		key, hash = k.sid, k.hashes.Session
	} else if k.fp != nil {
		key, hash = k.fpKey, k.hashes.Fingerprint
	}
	d := e.pass(src, true, key, hash, c.SessionID, c.UserID, c.ExpiresAt)
	if stamp := st.Stamp(); k.clear != stamp {
		switch v, reason := st.CheckToken(&k.hashes, now); v {
		case revocation.UserBlocked:
			// 401 as the Strapi plugin answers a blocked user's token.
			return d.refuse(401, reason)
		case revocation.SessionRevoked, revocation.TokenRevoked:
			return d.refuse(401, revokedReason(reason))
		case revocation.NotBeforeCut:
			return d.refuse(401, protocol.ReasonNotBefore)
		}
		k.clear = stamp
	}
	// Local revocations change without the state's stamp: looked up on
	// every decision (nothing when there are none).
	if reason, ok := e.local.Check(&k.hashes, now); ok {
		return d.refuse(401, revokedReason(reason))
	}
	// An iat in the future would date the token after any later
	// not-before cut ("log out everywhere"): refused whatever
	// enforce_expiry says.
	if c.HasIssuedAt && c.IssuedAt > now+ExpiryLeeway {
		d.refuse(401, ReasonInvalidToken)
		d.Message, d.Err = "Token issued in the future", errFutureIat
		return d
	}
	if e.cfg.EnforceExpiry && !companion {
		if c.HasExpiresAt && now > c.ExpiresAt+ExpiryLeeway {
			return d.refuse(401, protocol.ReasonExpired)
		}
		if c.HasNotBefore && c.NotBefore > now+ExpiryLeeway {
			d.refuse(401, ReasonInvalidToken)
			d.Message, d.Err = "Token not yet valid", errNotYetValid
			return d
		}
	}
	return d
}

var errNotYetValid = fmt.Errorf("token nbf is in the future")

func revokedReason(r string) string {
	if r == "" {
		return ReasonRevoked
	}
	return r
}

func (d *Decision) refuse(status int, reason string) *Decision {
	d.Action, d.Status, d.Reason, d.Message = Refuse, status, reason, Message(reason)
	return d
}

// CheckToken checks a token that is not the request's bearer token (e.g.
// the refresh token presented on the refresh route) against st: its fp key
// always, and when it decodes as a JWT (without verifying the signature:
// these checks can only refuse) its session key, blocked user and
// not-before. It does not check expiry. Opaque (non-JWT) tokens are fine.
func (e *Engine) CheckToken(now time.Time, tok string, st *revocation.State) Decision {
	if tok == "" {
		return Decision{}
	}
	if len(tok) > token.MaxTokenLen {
		d := e.refuse(401, ReasonInvalidToken, "Invalid token")
		d.Err, d.HasToken = token.ErrTooLong, true
		return *d
	}
	if token.NonCanonicalJWT(tok) {
		d := e.refuse(401, ReasonInvalidToken, "Invalid token")
		d.Err, d.HasToken = token.ErrBadBase64, true
		return *d
	}
	var c token.Claims
	if parts, err := token.Split(tok); err == nil {
		if cl, err := e.dec.Claims(parts.Payload); err == nil {
			c = cl
		}
	}
	c.HasExpiresAt = false
	c.HasNotBefore = false
	k := e.keysOf(tok, c)
	return *e.check(now.Unix(), &k, token.SourceNone, &c, st, true)
}

// Message returns the client-facing message for a refusal reason: the
// Strapi plugin's texts for its reasons
// (middlewares/session-rejection-headers.js), ours for the others.
func Message(reason string) string {
	switch reason {
	case protocol.ReasonLogout:
		return "You have logged out. Please log in again."
	case protocol.ReasonManual:
		return "Your session was terminated. Please log in again."
	case protocol.ReasonIdle:
		return "Your session expired due to inactivity. Please log in again."
	case protocol.ReasonExpired:
		return "Your session has reached its maximum age. Please log in again."
	case protocol.ReasonBlocked:
		return "Your account has been blocked. Contact support."
	case protocol.ReasonReuse:
		return "Your session was terminated: refresh token reuse detected. Please log in again."
	case protocol.ReasonNotBefore:
		return "You were logged out on all devices. Please log in again."
	case protocol.ReasonPolicy:
		return "Login refused by policy"
	case ReasonInvalidToken:
		return "Invalid token"
	case ReasonMissingToken:
		return "Missing token"
	case ReasonStale:
		return "Session service unavailable"
	case ReasonHeadersTooLarge:
		return "Request headers too large"
	default:
		return "Session invalid. Please log in again."
	}
}

// ErrorName returns the Strapi-style error name for a status.
func ErrorName(status int) string {
	switch status {
	case 400:
		return "ValidationError"
	case 401:
		return "UnauthorizedError"
	case 403:
		return "ForbiddenError"
	case 404:
		return "NotFoundError"
	case 429:
		return "TooManyRequestsError"
	case 503:
		return "ServiceUnavailableError"
	}
	if status >= 500 {
		return "ApplicationError"
	}
	return "HttpError"
}

// Body returns the JSON body of a refusal.
func (d Decision) Body() []byte {
	return ErrorBody(d.Status, d.Message, d.Reason)
}

// ErrorBody builds Strapi's error envelope
// {"data":null,"error":{"status":S,"name":N,"message":M,"details":{"reason":R}}}
// (the shape sessionsvc and the Strapi plugin answer) without encoding/json.
func ErrorBody(status int, message, reason string) []byte {
	b := make([]byte, 0, 140+len(message)+len(reason))
	b = append(b, `{"data":null,"error":{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"name":`...)
	b = gjson.AppendJSONString(b, ErrorName(status))
	b = append(b, `,"message":`...)
	b = gjson.AppendJSONString(b, message)
	b = append(b, `,"details":{"reason":`...)
	b = gjson.AppendJSONString(b, reason)
	return append(b, `}}}`...)
}
