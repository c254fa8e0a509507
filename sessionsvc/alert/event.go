// Package alert delivers the alerts sessionsvc raises (suspicious logins,
// new locations, VPN and threat logins, terminations, blocks) by email over
// SMTP and by webhooks (Slack, Discord, and a generic JSON format signed
// with HMAC-SHA256).
//
// Alerts are rows of the store's outbox, written in the same transaction as
// the event that raised them for logins, lockouts and unlocks, and right
// after the event's commit for ended sessions, blocks, refused logins and
// refresh-token reuse (a failed write there is logged and the alert lost).
// A sent alert keeps its payload without the user's names. A Dispatcher leases due rows
// (store.ClaimAlerts), sends them, and marks them sent, or failed with an
// exponential backoff, dead-lettering them after a number of tries. Two
// dispatchers (two replicas) never hold the same row, and a slow channel
// never delays a login: delivery is asynchronous.
package alert

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Events.
const (
	EventLoginSuccess      = "login.success"
	EventLoginSuspicious   = "login.suspicious"
	EventLoginNewLocation  = "login.new_location"
	EventLoginVPN          = "login.vpn"
	EventLoginThreat       = "login.threat"
	EventSessionTerminated = "session.terminated"
	EventUserBlocked       = "user.blocked"
	// Login protection: an identifier or address was locked after repeated
	// failed logins, or an admin lifted a lock.
	EventLoginLocked   = "login.locked"
	EventLoginUnlocked = "login.unlocked"
)

// Events lists every event.
var Events = []string{
	EventLoginSuccess, EventLoginSuspicious, EventLoginNewLocation, EventLoginVPN,
	EventLoginThreat, EventSessionTerminated, EventUserBlocked, EventLoginLocked, EventLoginUnlocked,
}

// KnownEvent reports whether e is one of Events.
func KnownEvent(e string) bool {
	for _, k := range Events {
		if k == e {
			return true
		}
	}
	return false
}

// Channel names as stored in store.Alert.Channel.
const (
	ChannelEmail = "email"
	// ChannelWebhookPrefix + name, e.g. "webhook:ops".
	ChannelWebhookPrefix = "webhook:"
)

// Payload is the event data stored with an alert and rendered by every channel.
type Payload struct {
	Event     string             `json:"event"`
	At        time.Time          `json:"at"`
	UserID    string             `json:"userId"`
	SessionID string             `json:"sessionId,omitempty"`
	IP        string             `json:"ip,omitempty"`
	UserAgent string             `json:"userAgent,omitempty"`
	Device    string             `json:"deviceType,omitempty"`
	Browser   string             `json:"browserName,omitempty"`
	OS        string             `json:"osName,omitempty"`
	Geo       *store.GeoLocation `json:"geoLocation,omitempty"`
	Score     *int               `json:"securityScore,omitempty"`
	Risk      string             `json:"riskLevel,omitempty"`
	Reasons   []string           `json:"reasons,omitempty"`
	// Denied: the login was refused by policy (DenyMessage says why).
	Denied      bool   `json:"denied,omitempty"`
	DenyMessage string `json:"denyMessage,omitempty"`
	// Reason: why a session ended (session.terminated, user.blocked).
	Reason string `json:"reason,omitempty"`
	// Sessions: how many sessions ended (user.blocked).
	Sessions int `json:"sessions,omitempty"`
	// Locale chooses the email template language ("de-DE" -> de).
	Locale string `json:"locale,omitempty"`
	// The user's names as the login answer gave them (may be empty).
	Username string `json:"username,omitempty"`
	Email    string `json:"email,omitempty"`
	// Reputation flags of the ip (the Strapi templates' reason.isVpn, …).
	IsVPN    bool `json:"isVpn,omitempty"`
	IsProxy  bool `json:"isProxy,omitempty"`
	IsThreat bool `json:"isThreat,omitempty"`
}

// NewAlerts makes one outbox row per channel for p.
func NewAlerts(p Payload, channels []string, now time.Time) ([]store.Alert, error) {
	if len(channels) == 0 {
		return nil, nil
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s alert: %w", p.Event, err)
	}
	out := make([]store.Alert, 0, len(channels))
	for _, c := range channels {
		out = append(out, store.Alert{
			Event:       p.Event,
			Channel:     c,
			Payload:     body,
			NextAttempt: now,
			CreatedAt:   now,
		})
	}
	return out, nil
}

// DecodePayload reads an alert's payload.
func DecodePayload(a store.Alert) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		return Payload{}, fmt.Errorf("decode alert %d payload: %w", a.ID, err)
	}
	if p.Event == "" {
		p.Event = a.Event
	}
	return p, nil
}
