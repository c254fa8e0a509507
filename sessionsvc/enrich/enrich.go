// Package enrich turns a login into what sessionsvc stores and decides about
// it: device from the user agent, location from GeoIP, ip reputation, a
// security score with its reasons, the login policy's decision, and the
// alerts the login raises.
package enrich

import (
	"context"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Login is what the plugin reported about a successful login.
type Login struct {
	UserID string
	// Username and Email as the login answer named the user (optional; for
	// alert templates).
	Username, Email string
	// Identifier is the login name the user typed (as reported in
	// protocol.FailedLogin.Identifier), when known. Optional. (Lockouts are
	// decided by the server's lockout.Guard, not by EnrichLogin.)
	Identifier string
	// SessionID, when the caller chose it before enrichment, is put in the
	// alerts' payload. Optional.
	SessionID string
	IP        string
	UserAgent string
	Locale    string
	Route     string
	At        time.Time
}

// Result is the enrichment of one login.
type Result struct {
	DeviceType  string // desktop, mobile, tablet, bot, unknown
	BrowserName string // e.g. "Chrome 131"
	OSName      string // e.g. "Windows 10"
	Geo         *store.GeoLocation
	Score       int      // 0..100
	Reasons     []string // why points were deducted
	Risk        string   // low, medium, high, critical
	// Deny refuses the login (the plugin turns it into a 403).
	Deny        bool
	DenyReason  string // protocol.ReasonPolicy
	DenyMessage string // shown to the client
	// Alerts to write to the outbox in the registration's transaction.
	Alerts []store.Alert
}

// Enricher is what sessionsvc's internal API calls. A nil Enricher means no
// enrichment: score 100, allow, no alerts.
type Enricher interface {
	// EnrichLogin runs before the session is stored.
	EnrichLogin(ctx context.Context, l Login) (Result, error)
	// FailedLogin counts a failed login (per ip and per identifier) and says
	// whether either is now locked out.
	FailedLogin(ctx context.Context, f protocol.FailedLogin, now time.Time) (locked bool, err error)
	// SessionEnded returns the alerts raised when sessions end
	// (session.terminated, or user.blocked when reason is protocol.ReasonBlocked).
	SessionEnded(ctx context.Context, s []store.Session, reason string, now time.Time) []store.Alert
	// UserBlocked returns the alerts raised when an admin blocks userID
	// (user.blocked, once per channel), whether or not the block ended
	// sessions: ended are the sessions it ended, possibly none.
	UserBlocked(ctx context.Context, userID string, ended []store.Session, now time.Time) []store.Alert
}
