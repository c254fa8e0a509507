// Package sessionview is the one JSON view of a session that the user API,
// the admin API and the admin dashboard (list, detail, JSON export) show:
// the Strapi plugin's session object (magic-sessionmanager 4.7.2,
// utils/enhance-session.js) plus a few fields of our own (userId, route,
// expiresAt, scoreReasons).
package sessionview

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Session is a session as every API shows it.
type Session struct {
	// ID and DocumentID are the store's id ("sess_…"): Strapi v5 answers a
	// document's documentId string as "id".
	ID         string `json:"id"`
	DocumentID string `json:"documentId"`
	// SessionID is the id the app sees in x-session-id: the token's session
	// claim, else its fingerprint key ("fp:…"), else the documentId.
	SessionID string `json:"sessionId"`
	UserID    string `json:"userId"`
	User      User   `json:"user"`

	IPAddress          string     `json:"ipAddress"`
	UserAgent          string     `json:"userAgent"`
	LoginTime          time.Time  `json:"loginTime"`
	LastActive         time.Time  `json:"lastActive"`
	LogoutTime         *time.Time `json:"logoutTime"`
	IsActive           bool       `json:"isActive"`
	TerminatedManually bool       `json:"terminatedManually"`
	TerminationReason  *string    `json:"terminationReason"`
	DeviceType         string     `json:"deviceType"`
	BrowserName        string     `json:"browserName"`
	OSName             string     `json:"osName"`
	GeoLocation        *Geo       `json:"geoLocation"`
	// SecurityScore is null when security scoring is off (as upstream).
	SecurityScore *int      `json:"securityScore"`
	ScoreReasons  []string  `json:"scoreReasons"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`

	// IsCurrentSession is set on the user API's answers only.
	IsCurrentSession   *bool `json:"isCurrentSession,omitempty"`
	IsTrulyActive      bool  `json:"isTrulyActive"`
	MinutesSinceActive int   `json:"minutesSinceActive"`

	Route     string     `json:"route"`
	ExpiresAt *time.Time `json:"expiresAt"`
	// Discovered: registered from traffic (a token no session knew), not
	// at its login.
	Discovered bool `json:"discovered,omitempty"`
}

// User is the relation Strapi populates as "user": {id, documentId,
// email, username}. id is a number when the app's user id is numeric (as
// Strapi's), else the string; the others are null when the login answer
// did not name them.
type User struct {
	ID         json.RawMessage `json:"id"`
	DocumentID *string         `json:"documentId"`
	Email      *string         `json:"email"`
	Username   *string         `json:"username"`
}

// Geo is the plugin's geoLocation object: every key present, null when
// unknown; latitude and longitude are ours.
type Geo struct {
	Country     *string  `json:"country"`
	CountryCode *string  `json:"country_code"`
	CountryFlag *string  `json:"country_flag"`
	City        *string  `json:"city"`
	Region      *string  `json:"region"`
	Timezone    *string  `json:"timezone"`
	Latitude    *float64 `json:"latitude"`
	Longitude   *float64 `json:"longitude"`
}

// Options are what a view depends on besides the session.
type Options struct {
	Now        time.Time
	Inactivity time.Duration // lastActive older than this is not truly active
	// Scoring is the enableSecurityScoring setting: off shows null scores.
	Scoring bool
	// Current marks isCurrentSession (user API): CurrentID is the caller's
	// session ("" when unknown).
	Current   bool
	CurrentID string
	// AppIDs maps session ids to the id the app sees (AppIDs()).
	AppIDs map[string]string
	// Keyring opens the user's sealed names (nil: names shown as null).
	Keyring *secrets.Keyring
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UserIDJSON is a user id as Strapi shows it: a number when numeric.
func UserIDJSON(id string) json.RawMessage {
	numeric := id != "" && len(id) <= 15 && id[0] != '0' || id == "0"
	for i := 0; numeric && i < len(id); i++ {
		numeric = id[i] >= '0' && id[i] <= '9'
	}
	if numeric {
		return json.RawMessage(id)
	}
	b, _ := json.Marshal(id)
	return b
}

// UserOf is the "user" relation of a session; sealed names are opened
// with kr (unreadable ones are null).
func UserOf(ss *store.Session, kr *secrets.Keyring) User {
	return User{ID: UserIDJSON(ss.UserID), DocumentID: strOrNil(open(kr, ss.UserDocumentID)),
		Email: strOrNil(open(kr, ss.UserEmail)), Username: strOrNil(open(kr, ss.Username))}
}

func open(kr *secrets.Keyring, v string) string {
	if v == "" || !secrets.IsSealed(v) || !kr.Enabled() {
		return ""
	}
	pt, err := kr.Open(v)
	if err != nil {
		return ""
	}
	return pt
}

// Flag turns an ISO 3166-1 alpha-2 code ("DE") into its flag emoji.
func Flag(cc string) string {
	cc = strings.ToUpper(cc)
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return ""
	}
	return string([]rune{rune(cc[0]) - 'A' + 0x1F1E6, rune(cc[1]) - 'A' + 0x1F1E6})
}

// GeoOf is the geoLocation of a stored location: nil when there is none
// or it names nothing.
func GeoOf(g *store.GeoLocation) *Geo {
	if g == nil || *g == (store.GeoLocation{}) {
		return nil
	}
	v := &Geo{Country: strOrNil(g.Country), CountryCode: strOrNil(g.CountryCode), CountryFlag: strOrNil(Flag(g.CountryCode)),
		City: strOrNil(g.City), Region: strOrNil(g.Region), Timezone: strOrNil(g.Timezone)}
	if g.Latitude != 0 || g.Longitude != 0 {
		lat, lon := g.Latitude, g.Longitude
		v.Latitude, v.Longitude = &lat, &lon
	}
	return v
}

// Of is the view of one session.
func Of(ss *store.Session, o Options) Session {
	last := ss.LastActive
	if last.IsZero() {
		last = ss.LoginTime
	}
	since := max(o.Now.Sub(last), 0)
	reasons := ss.ScoreReasons
	if reasons == nil {
		reasons = []string{}
	}
	updated := last
	if ss.LogoutTime != nil && ss.LogoutTime.After(updated) {
		updated = *ss.LogoutTime
	}
	appID := o.AppIDs[ss.ID]
	if appID == "" {
		appID = ss.ID
	}
	v := Session{
		ID: ss.ID, DocumentID: ss.ID, SessionID: appID, UserID: ss.UserID, User: UserOf(ss, o.Keyring),
		IPAddress: ss.IP, UserAgent: ss.UserAgent, LoginTime: ss.LoginTime, LastActive: last, LogoutTime: ss.LogoutTime,
		IsActive: ss.Active, TerminatedManually: ss.TerminatedManually, TerminationReason: strOrNil(ss.TerminationReason),
		DeviceType: ss.DeviceType, BrowserName: ss.BrowserName, OSName: ss.OSName, GeoLocation: GeoOf(ss.Geo),
		ScoreReasons: reasons, CreatedAt: ss.LoginTime, UpdatedAt: updated,
		IsTrulyActive:      ss.Active && since < o.Inactivity,
		MinutesSinceActive: int(since / time.Minute),
		Route:              ss.Route,
		Discovered:         ss.Discovered(),
	}
	if o.Scoring {
		sc := ss.SecurityScore
		v.SecurityScore = &sc
	}
	if o.Current {
		cur := o.CurrentID != "" && ss.ID == o.CurrentID
		v.IsCurrentSession = &cur
	}
	if !ss.ExpiresAt.IsZero() {
		e := ss.ExpiresAt
		v.ExpiresAt = &e
	}
	return v
}

// List is the view of sessions in order; active counts the truly active.
func List(list []store.Session, o Options) (out []Session, active int) {
	out = make([]Session, 0, len(list))
	for i := range list {
		v := Of(&list[i], o)
		if v.IsTrulyActive {
			active++
		}
		out = append(out, v)
	}
	return out, active
}

// AppIDs looks up the id the app sees for each session (nil map, no error,
// for an empty list).
func AppIDs(ctx context.Context, st store.Sessions, list []store.Session) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	ids := make([]string, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	return st.SessionAppIDs(ctx, ids)
}

// Resolve finds a session by any id the apps and APIs show: the
// documentId ("sess_…"), the sessionId (the token's session claim), or the
// x-session-id value ("fp:…" or a bare claim; "sid:…" also accepted).
// ErrNotFound when none names a session; ErrInvalid for an unusable id.
func Resolve(ctx context.Context, st store.Sessions, id string) (*store.Session, error) {
	if id == "" || len(id) > 512 || strings.ContainsAny(id, "\x00\r\n\t ") {
		return nil, store.ErrInvalid
	}
	if strings.HasPrefix(id, "sess_") {
		ss, err := st.GetSession(ctx, id)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return ss, err
		}
	}
	var keys []string
	switch {
	case strings.HasPrefix(id, "fp:"), strings.HasPrefix(id, "sid:"):
		keys = []string{id}
	default:
		keys = []string{"sid:" + id}
	}
	return st.FindSessionByKeys(ctx, keys)
}
