// Package store is sessionsvc's persistence: sessions and their keys, user
// block state, the append-only revocation log that feeds the plugins, admin
// tokens, settings, the alert outbox, failed-login counters and lockouts,
// and the audit trail.
//
// One Store interface, composed of one role interface per domain (Sessions,
// Users, RevocationLog, ...) so that each consumer takes only its part; two
// implementations (SQLite, the embedded default, and
// PostgreSQL for several replicas) that pass one contract test suite.
// Every state change that the proxies must learn about is appended to the
// revocation log in the same transaction as the change itself.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// Errors callers match with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("database unavailable")
	ErrBadCursor   = errors.New("invalid page cursor")
	// ErrInvalid: the caller's input cannot be used (unknown sort or
	// status, malformed id); the APIs answer 400.
	ErrInvalid = errors.New("invalid input")
	// ErrBlocked: CreateSession for a user who is blocked (checked in the
	// same transaction as the insert, so a block racing a login cannot
	// leave the blocked user an active session).
	ErrBlocked = errors.New("user is blocked")
)

// GeoLocation is where an ip was located at login.
type GeoLocation struct {
	Country     string  `json:"country,omitempty"`
	CountryCode string  `json:"country_code,omitempty"`
	City        string  `json:"city,omitempty"`
	Region      string  `json:"region,omitempty"`
	Latitude    float64 `json:"latitude,omitempty"`
	Longitude   float64 `json:"longitude,omitempty"`
	Timezone    string  `json:"timezone,omitempty"`
}

// Session is one login. Times are UTC.
type Session struct {
	ID                 string // "sess_..."
	UserID             string // the app's user id (string form)
	IP                 string
	UserAgent          string
	LoginTime          time.Time
	LastActive         time.Time
	LogoutTime         *time.Time // nil while active
	Active             bool
	TerminatedManually bool
	TerminationReason  string // protocol.Reason*; "" while active
	DeviceType         string // desktop, mobile, tablet, bot, unknown
	BrowserName        string
	OSName             string
	Geo                *GeoLocation // nil when unknown
	SecurityScore      int          // 0..100
	ScoreReasons       []string
	ExpiresAt          time.Time // latest expiry of any token of the session (zero when unknown)
	Route              string    // login route that created it
	Locale             string
	// The user as the login answer named them (empty when unknown); stored
	// encrypted when SESSION_ENCRYPTION_KEY is set.
	UserDocumentID string
	Username       string
	UserEmail      string
	// UserLookup is space-separated keyed hashes of the names
	// (secrets.Keyring.LookupTokens) for exact search.
	UserLookup string
}

// KeyKind says which token a key came from.
type KeyKind string

const (
	KeyAccess  KeyKind = "access"
	KeyRefresh KeyKind = "refresh"
	KeySession KeyKind = "session" // sid: claim value
)

// SessionKey names a session: "sid:..." or "fp:...".
type SessionKey struct {
	Key       string
	Kind      KeyKind
	ExpiresAt time.Time // expiry of the token it names (zero when unknown)
}

// Status filters for ListSessions.
type Status string

const (
	StatusAny        Status = ""
	StatusActive     Status = "active"     // active and seen within the idle threshold
	StatusIdle       Status = "idle"       // active but not seen within the idle threshold
	StatusLoggedOut  Status = "loggedout"  // ended by the user (logout)
	StatusTerminated Status = "terminated" // ended by anything else (manual, idle, expired, blocked, reuse)
)

// SessionQuery selects sessions for the user and admin APIs.
type SessionQuery struct {
	UserID     string // exact user, "" for all
	Status     Status
	ActiveOnly bool      // isActive = true, whatever the idle state
	IdleBefore time.Time // lastActive before this counts as idle (for StatusActive/StatusIdle)
	Search     string    // substring of user id, ip, country, browser, os, session id
	// SearchLookup: keyed hashes of Search (secrets.Keyring.LookupTokens);
	// a session whose user_lookup holds one matches too (exact names).
	SearchLookup []string
	Sort         string // "loginTime", "lastActive", "userId", "ip", "securityScore"; default loginTime
	Desc         bool
	Offset       int
	Limit        int // 0 = implementation default (25); capped at 1000
	// After is a keyset cursor (SessionPage.Next of the previous page with
	// the same filters and sort): the page starts after it, read straight
	// from an index however deep. Offset is then ignored.
	After string
	// ExactTotal counts every match (a scan at scale); otherwise filtered
	// counts stop at CountCap (see SessionPage.TotalCapped).
	ExactTotal bool
}

// CountCap is where a filtered count stops unless SessionQuery.ExactTotal.
const CountCap = 2000

// Count modes of SessionPage.Count.
const (
	CountMaintained = "maintained" // kept by triggers: exact, read in one row
	CountExact      = "exact"      // counted
	CountCapped     = "capped"     // counting stopped at CountCap: Total is a lower bound
	CountEstimated  = "estimated"  // PostgreSQL's planner estimate (more than CountCap matches)
)

// SessionPage is a page of sessions with the total matching count.
type SessionPage struct {
	Sessions []Session
	Total    int
	// Count says how Total was obtained (CountMaintained, CountExact,
	// CountCapped or CountEstimated); TotalCapped is Count == CountCapped.
	Count       string
	TotalCapped bool
	// Next is the keyset cursor of the following page ("" on the last page).
	Next string
}

// EndFilter selects sessions to end. At least one of SessionIDs, UserID must be set.
type EndFilter struct {
	SessionIDs      []string
	UserID          string
	ExceptSessionID string // keep this one (logout-others)
	// AlsoRevoke are keys revoked in the same transaction, until
	// AlsoRevokeUntil (zero: DefaultRevocationTTL from now), when no
	// session holds them (a logout's presented token that was never
	// registered); a key a session holds is revoked with that session.
	AlsoRevoke      []string
	AlsoRevokeUntil time.Time
}

// RefreshOutcome is the result of Refresh.
type RefreshOutcome struct {
	SessionID string
	Allowed   bool
	Reason    string // why not allowed: the session's termination reason, or protocol.ReasonReuse
}

// ActivityMark moves a session's lastActive forward.
type ActivityMark struct {
	Key string // any key of the session
	At  time.Time
	IP  string
}

// AdminToken is a stored (hashed) admin bearer token.
type AdminToken struct {
	ID        int64
	Name      string
	Hash      string // hex SHA-256 of the token; the token itself is never stored
	CreatedAt time.Time
	LastUsed  *time.Time
	Revoked   bool
}

// Alert is one outbox message, written in the transaction of the event that caused it.
type Alert struct {
	ID          int64
	Event       string          // "login.success", "session.terminated", ...
	Channel     string          // "email", "webhook:<name>", ...
	Payload     json.RawMessage // event data for the channel's renderer
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Dead        bool // dead-lettered after too many tries
	CreatedAt   time.Time
	SentAt      *time.Time
}

// Store is sessionsvc's persistence: every role below, on one database.
// All methods are safe for concurrent use and, on PostgreSQL, across
// replicas. Consumers that need less take the narrowest role (or a small
// composition of roles declared where they are used).
type Store interface {
	Sessions
	Users
	RevocationLog
	Retention
	AdminTokens
	Settings
	AlertOutbox
	FailedLogins
	LoginCounters
	LoginRefusals
	Audit

	// Ping checks the database is reachable and migrations are applied.
	Ping(ctx context.Context) error
	Close() error
}

// Sessions holds the sessions and the token keys that name them: login,
// refresh, activity, discovery and ending. Ending a session logs a revoke
// change for each of its keys in the same transaction.
type Sessions interface {
	// CreateSession stores a new session with its keys and, in the same
	// transaction, the alerts it raised.
	CreateSession(ctx context.Context, s *Session, keys []SessionKey, alerts []Alert) error
	GetSession(ctx context.Context, id string) (*Session, error)
	// FindSessionByKeys returns the session named by any of keys (ErrNotFound if none).
	FindSessionByKeys(ctx context.Context, keys []string) (*Session, error)
	ListSessions(ctx context.Context, q SessionQuery) (SessionPage, error)
	// SessionAppIDs returns, for each of the sessions ids that has one, the
	// id the app sees for it (the token's session claim, else the newest
	// access-token key); sessions with neither are missing from the map.
	SessionAppIDs(ctx context.Context, ids []string) (map[string]string, error)
	// UserIDByLookup returns the user id of the newest session whose
	// user_lookup holds one of tokens (ErrNotFound when none does).
	UserIDByLookup(ctx context.Context, tokens []string) (string, error)
	// AddKeys attaches keys to a session (a refresh's new tokens).
	AddKeys(ctx context.Context, sessionID string, keys []SessionKey) error
	// Refresh handles a refresh the upstream answered 2xx, which presented
	// the refresh-token keys presented: refused if the session has ended
	// (Reason its termination reason); if a presented key was already
	// rotated (reuse) the whole session ends with ReasonReuse (revocations
	// logged); otherwise the presented keys are marked rotated and newKeys
	// attached. ErrNotFound if no session knows the keys.
	Refresh(ctx context.Context, presented []string, newKeys []SessionKey, now time.Time) (RefreshOutcome, error)
	// CheckRefresh judges a refresh the upstream refused, like Refresh but
	// rotating and attaching nothing: refused if the session has ended;
	// a presented key already rotated is still reuse and ends the session
	// with ReasonReuse; otherwise allowed. ErrNotFound if no session knows
	// the keys (or none is presented).
	CheckRefresh(ctx context.Context, presented []string, now time.Time) (RefreshOutcome, error)
	// EndSessions ends the active sessions matching f with reason, logging a
	// revoke change for every key of every ended session. manual marks
	// terminatedManually. Returns the ids ended.
	EndSessions(ctx context.Context, f EndFilter, reason string, manual bool, now time.Time) ([]string, error)
	// DeleteSession removes a session for good (its keys are revoked first if it was active).
	DeleteSession(ctx context.Context, id string, now time.Time) error
	// RecordActivity moves lastActive forward (never back) for each mark's
	// session; marks for unknown keys, and for ended sessions, are ignored.
	// GetSession, FindSessionByKeys, ListSessions' rows and EndIdle see a
	// mark at once; the active and idle filters and the lastActive sort of
	// ListSessions once MergeActivity merged it. Returns the sessions whose
	// pending mark moved forward (an ended session's may count).
	RecordActivity(ctx context.Context, marks []ActivityMark) (int, error)
	// DiscoverSessions registers tokens seen in traffic that no session
	// knows (see Discovery, RouteDiscovered); returns the ids created.
	DiscoverSessions(ctx context.Context, ds []Discovery, now time.Time) ([]string, error)
}

// Users holds per-user state the proxies enforce: blocks and not-before
// times, each change logged to the revocation log.
type Users interface {
	// SetBlocked blocks or unblocks a user. Blocking ends the user's sessions
	// with ReasonBlocked and logs a block change; unblocking logs an unblock.
	SetBlocked(ctx context.Context, userID string, blocked bool, now time.Time) error
	IsBlocked(ctx context.Context, userID string) (bool, error)
	// SetNotBefore refuses the user's tokens issued before at (logs a
	// not_before change that can be dropped after exp).
	SetNotBefore(ctx context.Context, userID string, at, exp, now time.Time) error
}

// RevocationLog is the append-only log of revocations the plugins sync from.
type RevocationLog interface {
	// Epoch names this store's revocation log; it changes only when the store is reset.
	Epoch(ctx context.Context) (string, error)
	// Changes returns the revocation log after cursor (a snapshot of live
	// entries when cursor is 0 or epoch is not this store's), at most limit.
	Changes(ctx context.Context, epoch string, cursor int64, limit int, now time.Time) (protocol.SyncPage, error)
	// RevokeKeys logs revoke changes for keys that name no known session
	// (a logout of a token sessionsvc never saw), expiring at exp.
	RevokeKeys(ctx context.Context, keys []string, reason string, exp time.Time, now time.Time) error
	// Compact drops log entries whose tokens have all expired. Returns rows removed.
	Compact(ctx context.Context, now time.Time) (int, error)
}

// Retention ends sessions by age and forgets ended ones (the periodic jobs).
type Retention interface {
	// EndIdle ends active sessions whose lastActive is before idleBefore
	// (ReasonIdle): merged or not, a mark at or after idleBefore keeps a
	// session.
	EndIdle(ctx context.Context, idleBefore, now time.Time) ([]string, error)
	// MergeActivity moves up to max pending activity marks (RecordActivity)
	// into the sessions' stored lastActive, which the active and idle
	// filters and the lastActive sort of ListSessions read. Returns the
	// marks taken (0 when none is pending).
	MergeActivity(ctx context.Context, max int) (int, error)
	// EndOld ends active sessions that logged in before loginBefore (ReasonExpired).
	EndOld(ctx context.Context, loginBefore, now time.Time) ([]string, error)
	// Purge is the retention job: it deletes ended sessions whose logout
	// time is before endedBefore, and also sent alerts and failed-login
	// rows older than endedBefore.
	Purge(ctx context.Context, endedBefore time.Time) (int, error)
	// DeleteEnded deletes every ended session (and its keys), whatever its
	// logout time, and nothing else: alerts, failed-login counters and
	// lockouts stay (the admin API's clean-inactive). Returns the count.
	DeleteEnded(ctx context.Context) (int, error)
}

// AdminTokens holds the admin bearer tokens, hashed.
type AdminTokens interface {
	CreateAdminToken(ctx context.Context, name, hash string, now time.Time) (AdminToken, error)
	// FindAdminToken returns the non-revoked token with this hash and records its use.
	FindAdminToken(ctx context.Context, hash string, now time.Time) (AdminToken, error)
	ListAdminTokens(ctx context.Context) ([]AdminToken, error)
	RevokeAdminToken(ctx context.Context, id int64) error
}

// Settings holds the settings: one JSON document owned by the admin API.
type Settings interface {
	GetSettings(ctx context.Context) (json.RawMessage, error) // nil, nil when never set
	PutSettings(ctx context.Context, doc json.RawMessage) error
}

// AlertOutbox is the queue of alerts to deliver, written in the
// transaction of the event that raised them and leased to one dispatcher
// at a time.
type AlertOutbox interface {
	// EnqueueAlerts writes alerts outside a session registration (terminations, blocks).
	EnqueueAlerts(ctx context.Context, alerts []Alert) error
	// ClaimAlerts leases up to n due alerts to owner until now+lease; two
	// replicas never hold the same alert (FOR UPDATE SKIP LOCKED on PostgreSQL).
	ClaimAlerts(ctx context.Context, owner string, n int, now time.Time, lease time.Duration) ([]Alert, error)
	MarkAlertSent(ctx context.Context, id int64, now time.Time) error
	// MarkAlertFailed records a failed try; dead dead-letters it, else it is retried at next.
	MarkAlertFailed(ctx context.Context, id int64, errMsg string, next time.Time, dead bool) error
	ListAlerts(ctx context.Context, deadOnly bool, limit int) ([]Alert, error)
	// RetryAlert puts a dead-lettered alert back in the queue, due at now,
	// with its attempts reset (the backoff and the try budget start again).
	// ErrNotFound when there is no such alert, ErrConflict when it is not
	// dead-lettered (pending, perhaps leased by a replica sending it, or sent).
	RetryAlert(ctx context.Context, id int64, now time.Time) error
}

// FailedLogins counts failed logins per scope in a sliding window (the
// dashboard's sign-in throttle and charts); LoginCounters does lockouts.
type FailedLogins interface {
	// RecordFailedLogin counts a failed login under scope ("ip:1.2.3.4",
	// "user:alice") and returns the failures within [now-window, now].
	RecordFailedLogin(ctx context.Context, scope string, now time.Time, window time.Duration) (int, error)
	CountFailedLogins(ctx context.Context, scope string, since time.Time) (int, error)
	ClearFailedLogins(ctx context.Context, scope string) error
}

// LoginCounters holds the failed-login counters and lockouts of login
// protection. Every change is one atomic statement (an upsert with
// RETURNING) so that any number of replicas on one PostgreSQL database
// agree exactly.
type LoginCounters interface {
	// RecordLoginFailure counts one failure in one atomic upsert: a failure
	// while locked adds to the count and keeps the lock; a failure after the
	// window (or an earlier lock) ended starts a new window; reaching the
	// threshold locks until At+LockFor. When this failure locked the scope,
	// onLock's audit events and alerts are written in the same transaction.
	RecordLoginFailure(ctx context.Context, f LoginFailure, onLock func(LoginCounter) ([]AuditEvent, []Alert)) (LoginCounter, error)
	// RecordLoginFailures counts one failure under each of fs (their scopes
	// distinct) in one transaction, and, when eventScope is set, records the
	// failure under it in failed_logins (the dashboard's overview) and as a
	// refused login (RefusalCredentials, LoginRefusals) in the same
	// transaction.
	RecordLoginFailures(ctx context.Context, fs []LoginFailure, eventScope string, onLock func(LoginCounter) ([]AuditEvent, []Alert)) ([]LoginCounter, error)
	// BeginLoginAttempts admits one attempt under every scope of as, or
	// none (ok false: nothing is recorded), in one transaction, so that
	// concurrent attempts never exceed a threshold: an attempt takes a
	// pending slot that its failure report (RecordLoginFailures) turns into
	// a failure, its success frees (ResetLoginFailures, ReleaseLoginAttempt),
	// or PendingTTL ends. The counters are returned in the order of as.
	BeginLoginAttempts(ctx context.Context, as []LoginAttempt) (bool, []LoginCounter, error)
	// ReleaseLoginAttempt frees one pending slot of scope (a success).
	ReleaseLoginAttempt(ctx context.Context, scope string, now time.Time) error
	// ResetLoginFailures forgets the scope's failures unless it is locked at now
	// (a successful login; a lock stands until it ends or an admin lifts it).
	ResetLoginFailures(ctx context.Context, scope string, now time.Time) error
	// ActiveLockouts returns the counters among scopes that are locked at now.
	ActiveLockouts(ctx context.Context, scopes []string, now time.Time) ([]LoginCounter, error)
	// ListLockouts returns every counter locked at now, latest lock first (at most limit).
	ListLockouts(ctx context.Context, now time.Time, limit int) ([]LoginCounter, error)
	// Unlock lifts the lock of scope (ErrNotFound when it is not locked at
	// now) and writes audit and alerts in the same transaction.
	Unlock(ctx context.Context, scope string, now time.Time, audit []AuditEvent, alerts []Alert) (LoginCounter, error)
	// PruneLoginCounters deletes unlocked counters whose last failure is before before.
	PruneLoginCounters(ctx context.Context, before, now time.Time) (int, error)
}

// LoginRefusals is the append-only record of refused logins by reason
// (RefusalCredentials, RefusalLockout, RefusalPolicy, RefusalBlocked), for
// the dashboard's analytics. It is written where a refusal is decided and
// kept until PruneLoginRefusals (the retention), so a past range's counts
// never change; it does not take part in lockout decisions.
type LoginRefusals interface {
	// RecordLoginRefusal appends one refused login (an unknown reason is an error).
	RecordLoginRefusal(ctx context.Context, reason string, at time.Time) error
	// CountLoginRefusals counts the refusals in [from, to) by reason (every
	// reason present, 0 when none).
	CountLoginRefusals(ctx context.Context, from, to time.Time) (map[string]int, error)
	// PruneLoginRefusals deletes the refusals before before.
	PruneLoginRefusals(ctx context.Context, before time.Time) (int, error)
}

// Audit is the append-only audit trail (lockouts, admin actions).
type Audit interface {
	// AppendAudit writes audit events.
	AppendAudit(ctx context.Context, events []AuditEvent) error
	// ListAudit returns audit events newest first with an id below beforeID (0: the newest), at most limit.
	ListAudit(ctx context.Context, beforeID int64, limit int) ([]AuditEvent, error)
}
