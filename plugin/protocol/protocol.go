// Package protocol defines the wire format between the meshsession filter
// (plugin.wasm) and sessionsvc's internal API (/internal/v1/...).
//
// It holds types and constants only, with no dependencies beyond the
// standard library, so that both the Wasm filter and sessionsvc import the
// same definitions. Times are Unix seconds unless a field says otherwise.
//
// Every call carries the shared key in HeaderKey; sessionsvc compares it in
// constant time and answers 401 on a mismatch.
package protocol

// HeaderKey carries the shared key plugin <-> sessionsvc.
const HeaderKey = "x-meshsession-key"

// Paths of the internal API.
const (
	PathSessions = "/internal/v1/sessions"        // POST RegisterRequest -> RegisterResponse
	PathTokens   = "/internal/v1/sessions/tokens" // POST RefreshRequest -> RefreshResponse
	PathRevoke   = "/internal/v1/revoke"          // POST RevokeRequest -> RevokeResponse
	PathActivity = "/internal/v1/activity"        // POST []Activity -> ActivityResponse
	PathFailed   = "/internal/v1/logins/failed"   // POST FailedLogin -> FailedLoginResponse
	// PathUnreadable: a 2xx login answer the filter cannot read (no token
	// to register): sessionsvc says whether it may pass.
	PathUnreadable = "/internal/v1/logins/unreadable" // POST UnreadableLogin -> UnreadableLoginResponse
	// PathLoginCheck: POST LoginCheck -> LoginCheckResponse, on the login
	// request before it reaches the app.
	PathLoginCheck = "/internal/v1/logins/check"
	PathSync       = "/internal/v1/sync" // GET ?epoch=E&cursor=N[&limit=L] -> SyncPage
)

// Key prefixes. A key names a session (sid:, fp:) or a user (user:).
const (
	PrefixSession     = "sid:"
	PrefixFingerprint = "fp:"
	PrefixUser        = "user:"
)

// Decisions returned by RegisterResponse and RefreshResponse.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Termination reasons: why a session ended or a request was refused.
const (
	ReasonLogout  = "logout"  // the user logged out
	ReasonManual  = "manual"  // an admin terminated it
	ReasonIdle    = "idle"    // inactivity timeout
	ReasonExpired = "expired" // maximum session age
	ReasonBlocked = "blocked" // the user is blocked
	ReasonReuse   = "reuse"   // refresh-token reuse detected
	// ReasonNotBefore: the token was issued before the user's not-before time
	// (logout-all / terminate-all).
	ReasonNotBefore = "not_before"
	// ReasonPolicy: the login was refused by login policy (country, VPN, score).
	ReasonPolicy = "policy"
	// ReasonLocked: the login was refused, before the app saw it, because
	// its identifier or address is locked out after repeated failures (429).
	ReasonLocked = "locked"
)

// RegisterRequest is sent when the login route answered 2xx.
type RegisterRequest struct {
	UserID string `json:"userId"`
	// Keys of the access token: "sid:<v>" when the token carries a session
	// claim, and always "fp:<sha256 base64url of the raw token>".
	Keys []string `json:"keys"`
	// RefreshKeys: "fp:<...>" of the refresh token, when the login returned one.
	RefreshKeys []string `json:"refreshKeys,omitempty"`
	IP          string   `json:"ip"`
	UserAgent   string   `json:"userAgent"`
	// IssuedAt and ExpiresAt of the access token (0 when unknown).
	IssuedAt  int64 `json:"issuedAt,omitempty"`
	ExpiresAt int64 `json:"expiresAt,omitempty"`
	// RefreshExpiresAt of the refresh token when known (0 when unknown).
	RefreshExpiresAt int64  `json:"refreshExpiresAt,omitempty"`
	Route            string `json:"route"`
	// Locale from Accept-Language, for alert templates (may be empty).
	Locale string `json:"locale,omitempty"`
	// The user as the login answer names them (login.user_document_id_path,
	// username_path, email_path); empty when absent. sessionsvc stores them
	// sealed and shows them in the admin API's user relation.
	UserDocumentID string `json:"userDocumentId,omitempty"`
	Username       string `json:"username,omitempty"`
	Email          string `json:"email,omitempty"`
	// Identifier is the login name from the login request (as in
	// LoginCheck): a success resets its failed-login counter.
	Identifier string `json:"identifier,omitempty"`
}

// RegisterResponse answers RegisterRequest (HTTP 200).
type RegisterResponse struct {
	SessionID string `json:"sessionId"`
	Decision  string `json:"decision"` // DecisionAllow or DecisionDeny
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"` // human-readable, shown to the client on deny
	Score     int    `json:"score"`
}

// RefreshRequest is sent after the refresh route answered (any status).
type RefreshRequest struct {
	// PresentedKeys: keys of the refresh token the client presented.
	PresentedKeys []string `json:"presentedKeys"`
	// Status is the upstream's HTTP status for the refresh.
	Status int `json:"status"`
	// New tokens' keys (empty when Status is not 2xx).
	Keys             []string `json:"keys,omitempty"`
	RefreshKeys      []string `json:"refreshKeys,omitempty"`
	ExpiresAt        int64    `json:"expiresAt,omitempty"`
	RefreshExpiresAt int64    `json:"refreshExpiresAt,omitempty"`
	IP               string   `json:"ip,omitempty"`
	UserAgent        string   `json:"userAgent,omitempty"`
}

// RefreshResponse answers RefreshRequest (HTTP 200). Decision deny means the
// refresh must be refused (session ended, or reuse detected, which ends the
// whole session with ReasonReuse).
type RefreshResponse struct {
	SessionID string `json:"sessionId,omitempty"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason,omitempty"`
}

// RevokeRequest ends the session named by any of Keys (logout route).
type RevokeRequest struct {
	Keys   []string `json:"keys"`
	Reason string   `json:"reason,omitempty"` // default ReasonLogout
}

// RevokeResponse answers RevokeRequest. Found is false when no session is
// known for the keys (the keys are still published as revoked).
type RevokeResponse struct {
	SessionID string `json:"sessionId,omitempty"`
	Found     bool   `json:"found"`
}

// Activity is one last-seen mark. The body of PathActivity is a JSON array
// of these. At is Unix milliseconds.
type Activity struct {
	Key  string `json:"key"`
	User string `json:"user,omitempty"`
	At   int64  `json:"at"`
	IP   string `json:"ip,omitempty"`
	// Keys, UserAgent and Exp describe the token for session discovery:
	// a token whose keys no session knows (a login made while sessionsvc
	// was down, a registration that timed out, a session older than the
	// filter) is registered from them as a discovered session. Keys are
	// all the token's keys (Key first); Exp is its exp (Unix seconds, 0
	// when none).
	Keys      []string `json:"keys,omitempty"`
	UserAgent string   `json:"userAgent,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
}

// ActivityResponse answers a batch: how many marks were accepted and how
// many sessions' lastActive moved.
type ActivityResponse struct {
	Accepted int `json:"accepted"`
	Updated  int `json:"updated"`
}

// UnreadableLogin reports a 2xx login answer the filter could not read
// (compressed, over its body limit, not JSON, no token at the configured
// path): no session can be registered for it.
type UnreadableLogin struct {
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent,omitempty"`
	Status    int    `json:"status"`
	// Why is one of the Unreadable* values.
	Why   string `json:"why"`
	Route string `json:"route,omitempty"`
}

// Why a login answer was unreadable (UnreadableLogin.Why).
const (
	UnreadableCompressed = "compressed"
	UnreadableTooLarge   = "too_large"
	UnreadableNotJSON    = "not_json"
	UnreadableNoToken    = "no_token"
)

// UnreadableLoginResponse: DecisionDeny (with Reason, Message) when a login
// policy is active, so that the unchecked token never reaches the client;
// DecisionAllow when none is.
type UnreadableLoginResponse struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
}

// FailedLogin reports a login the upstream refused (non-2xx on the login
// route), for lockout counting.
type FailedLogin struct {
	Identifier string `json:"identifier,omitempty"`
	IP         string `json:"ip"`
	Status     int    `json:"status"`
}

// FailedLoginResponse tells whether the ip or identifier is now locked out.
type FailedLoginResponse struct {
	Locked bool `json:"locked"`
}

// LoginCheck asks, on the login request and before the app sees it,
// whether the login may go on: lockout (per identifier and per address)
// and whatever the policy decides from the address alone.
type LoginCheck struct {
	IP string `json:"ip"`
	// Identifier is the login name from the request body, "" when missing;
	// a non-string value is sent as its JSON text. Bounded by the filter;
	// sessionsvc normalises it (trimmed, case-folded, bounded).
	Identifier string `json:"identifier"`
	UserAgent  string `json:"userAgent,omitempty"`
}

// LoginCheckResponse answers LoginCheck (HTTP 200). Deny with ReasonLocked
// is answered 429 with Retry-After: RetryAfter (seconds); deny with
// ReasonPolicy is answered 403 with Message.
type LoginCheckResponse struct {
	Decision   string `json:"decision"` // DecisionAllow or DecisionDeny
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	RetryAfter int    `json:"retryAfter,omitempty"`
}

// Change operations in a SyncPage.
const (
	OpRevoke    = "revoke"     // Key is refused until Exp
	OpUnrevoke  = "unrevoke"   // Key is no longer refused
	OpBlock     = "block"      // User is blocked (401 reason blocked) until unblocked
	OpUnblock   = "unblock"    // User is no longer blocked
	OpNotBefore = "not_before" // tokens of User with iat < At are refused, until Exp
)

// Change is one entry of the revocation log.
type Change struct {
	Seq    int64  `json:"seq"`
	Op     string `json:"op"`
	Key    string `json:"key,omitempty"`    // OpRevoke, OpUnrevoke
	User   string `json:"user,omitempty"`   // OpBlock, OpUnblock, OpNotBefore
	Exp    int64  `json:"exp,omitempty"`    // Unix seconds after which the entry can be dropped; 0 = never
	At     int64  `json:"at,omitempty"`     // OpNotBefore: the not-before time (Unix seconds)
	Reason string `json:"reason,omitempty"` // termination reason
}

// SyncPage answers GET PathSync?epoch=E&cursor=N&limit=L.
//
// Changes are in log order (ascending Seq) and must be applied in order.
// When Reset is true (cursor 0, a foreign epoch, or a cursor past the log's
// head: the store was restored from a backup) the page starts a full
// snapshot: the client builds a fresh state from this page and the pages
// that follow (More) and swaps it in once More is false, keeping what its
// previous state held that the snapshot lacks until it expires. A snapshot
// holds the live entries (nothing expired) and the latest explicit lift
// (unrevoke, unblock) of each subject, so that a lift is told from
// "absent". Cursor is the Seq of the
// last change returned (or the request's cursor when nothing changed), to be
// passed back as cursor= together with Epoch.
type SyncPage struct {
	Epoch  string `json:"epoch"`
	Cursor int64  `json:"cursor"`
	More   bool   `json:"more"`
	Reset  bool   `json:"reset"`
	Now    int64  `json:"now"` // server time, Unix seconds
	// Total is, on a Reset page, about how many entries the whole snapshot
	// holds (its pages together): a hint to size the table once. 0 = unknown.
	Total   int64    `json:"total,omitempty"`
	Changes []Change `json:"changes"`
}

// Error is the JSON error body of every non-2xx internal API answer.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the Strapi-shaped error object.
type ErrorBody struct {
	Status  int            `json:"status"`
	Name    string         `json:"name"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}
