package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip"
	"github.com/meshsession/meshsession/sessionsvc/enrich/policy"
	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/enrich/score"
	"github.com/meshsession/meshsession/sessionsvc/enrich/useragent"
	"github.com/meshsession/meshsession/sessionsvc/lockout"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Config configures a Service.
type Config struct {
	// GeoIPPath is a MaxMind-format .mmdb (City or Country); "" = geolocation off.
	GeoIPPath string
	// Reputation are the ip list files; empty paths leave a list off.
	Reputation reputation.Files
	// ReloadInterval: how often the GeoIP database and lists are checked for
	// changes (default 30 s).
	ReloadInterval time.Duration
	// Policy returns the current login policy, read on every login so that
	// a settings change takes effect at once (policy.Holder.Get). nil = policy.Default().
	Policy func() policy.Policy
	// AlertChannels returns the channels an event is written for
	// (store.Alert.Channel: "email", "webhook:<name>"), e.g.
	// alert.ChannelsConfig.For. nil or empty = no alerts.
	AlertChannels func(event string) []string
}

// Store is what the service needs of the store: the user's session history
// (scoring) and the login counters (lockout).
type Store interface {
	store.Sessions
	store.LoginCounters
}

// Service enriches logins. It implements Enricher. Build it with New, run
// its reloaders with Run.
type Service struct {
	cfg    Config
	st     Store
	log    *slog.Logger
	ua     *useragent.Parser
	geo    *geoip.DB
	lists  *reputation.Lists
	policy func() policy.Policy
	guard  *lockout.Guard

	runOnce sync.Once
}

var _ Enricher = (*Service)(nil)

// New loads the GeoIP database and the reputation lists (a missing or bad
// file is a warning, never an error) and returns the service.
func New(cfg Config, st Store, logger *slog.Logger) (*Service, error) {
	if st == nil {
		return nil, errors.New("enrich: store is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = 30 * time.Second
	}
	s := &Service{
		cfg:    cfg,
		st:     st,
		log:    logger.With("component", "enrich"),
		ua:     useragent.NewParser(),
		geo:    geoip.Open(cfg.GeoIPPath, logger),
		lists:  reputation.NewLists(cfg.Reputation, logger),
		policy: cfg.Policy,
	}
	if s.policy == nil {
		def := policy.Default()
		s.policy = func() policy.Policy { return def }
	}
	s.guard = lockout.New(st, lockout.Config{Policy: s.policy, AlertChannels: cfg.AlertChannels, Logger: logger})
	return s, nil
}

// Run watches the GeoIP database and the lists for changes until ctx is done.
func (s *Service) Run(ctx context.Context) {
	s.runOnce.Do(func() {
		var wg sync.WaitGroup
		wg.Go(func() { s.geo.Run(ctx, s.cfg.ReloadInterval) })
		wg.Go(func() { s.lists.Run(ctx, s.cfg.ReloadInterval) })
		wg.Wait()
	})
}

// Guard is the login protection (failed-login counters and lockouts) with this service's policy.
func (s *Service) Guard() *lockout.Guard { return s.guard }

// GeoIP is the geolocation database (for status pages).
func (s *Service) GeoIP() *geoip.DB { return s.geo }

// Lists are the reputation lists (for status pages).
func (s *Service) Lists() *reputation.Lists { return s.lists }

// Lookup locates an ip (see geoip.DB.Lookup).
func (s *Service) Lookup(ctx context.Context, ip string) (*store.GeoLocation, error) {
	return s.geo.Lookup(ctx, ip)
}

// IPInfo answers the admin geolocation route: location plus reputation,
// with the Strapi plugin's field names.
type IPInfo struct {
	IP          string  `json:"ip"`
	Country     string  `json:"country,omitempty"`
	CountryCode string  `json:"country_code,omitempty"`
	CountryFlag string  `json:"country_flag,omitempty"`
	City        string  `json:"city,omitempty"`
	Region      string  `json:"region,omitempty"`
	Timezone    string  `json:"timezone,omitempty"`
	Latitude    float64 `json:"latitude,omitempty"`
	Longitude   float64 `json:"longitude,omitempty"`
	IsTor       bool    `json:"isTor"`
	IsVPN       bool    `json:"isVpn"`
	IsProxy     bool    `json:"isProxy"`
	IsThreat    bool    `json:"isThreat"`
	IsAnonymous bool    `json:"isAnonymous"` // hosting/datacenter
	IsPrivate   bool    `json:"isPrivate"`
	// SecurityScore and RiskLevel from the ip alone (no user history).
	SecurityScore int    `json:"securityScore"`
	RiskLevel     string `json:"riskLevel"`
	// Located is false when no database is loaded or it has no record.
	Located bool `json:"located"`
}

// Geolocate implements the server's Geolocator hook
// (GET /magic-sessionmanager/geolocation/{ip}): an *IPInfo. An invalid ip
// is an error matching geoip.ErrInvalidIP; a missing database or record is
// not an error (Located false), so reputation is still shown.
func (s *Service) Geolocate(ctx context.Context, ip string) (any, error) {
	return s.IPInfo(ctx, ip)
}

// IPInfo locates ip and checks it against the lists.
func (s *Service) IPInfo(ctx context.Context, ip string) (*IPInfo, error) {
	a, err := geoip.ParseIP(ip)
	if err != nil {
		return nil, err
	}
	info := &IPInfo{IP: a.String(), IsPrivate: geoip.IsPrivate(a)}
	g, err := s.geo.Locate(a)
	switch {
	case err == nil:
		info.Located = true
		info.Country, info.CountryCode, info.City, info.Region = g.Country, g.CountryCode, g.City, g.Region
		info.Timezone, info.Latitude, info.Longitude = g.Timezone, g.Latitude, g.Longitude
		info.CountryFlag = flag(g.CountryCode)
	case errors.Is(err, geoip.ErrNotFound), errors.Is(err, geoip.ErrUnavailable):
	default:
		return nil, err
	}
	f := s.lists.Check(a)
	info.IsTor, info.IsVPN, info.IsProxy, info.IsThreat, info.IsAnonymous = f.Tor, f.VPN, f.Proxy, f.Threat, f.Datacenter
	// An ip alone scores only its reputation (no user, no history).
	r := score.Compute(s.policy().Score, score.Input{Flags: f})
	info.SecurityScore, info.RiskLevel = r.Score, r.Risk
	return info, nil
}

// flag turns "DE" into the flag emoji.
func flag(cc string) string {
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return ""
	}
	return string([]rune{rune(cc[0]) - 'A' + 0x1F1E6, rune(cc[1]) - 'A' + 0x1F1E6})
}

// EnrichLogin parses the user agent, locates the ip, checks its
// reputation, scores the login against the user's recent sessions, applies
// the policy and lists the alerts to write with the session. Store errors
// while reading history are logged and the history signals skipped; the
// login is never failed because a source is missing.
func (s *Service) EnrichLogin(ctx context.Context, l Login) (Result, error) {
	p := s.policy()
	at := l.At
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()

	dev := s.ua.Parse(l.UserAgent)
	res := Result{DeviceType: dev.Type, BrowserName: dev.Browser, OSName: dev.OS}

	addr, ipErr := geoip.ParseIP(l.IP)
	var flags reputation.Flags
	if ipErr != nil {
		s.log.Warn("login with an unusable ip address; no geolocation or reputation", "user", l.UserID, "ip", truncate(l.IP, 64))
	} else {
		flags = s.lists.Check(addr)
		if !p.DisableGeolocation {
			res.Geo = s.locate(addr)
		}
	}

	// Lockouts are decided by the server (lockout.Guard) on the login
	// request and again at registration, not here.
	hist, active := s.history(ctx, p, l.UserID)

	sc := score.Compute(p.Score, score.Input{
		Flags: flags, Geo: res.Geo, Browser: dev.Browser, OS: dev.OS, At: at,
		History: hist, ActiveSessions: active,
	})
	res.Score, res.Reasons, res.Risk = sc.Score, sc.Reasons, sc.Risk

	if !res.Deny {
		if msg := decide(p, res.Geo, flags, sc.Score); msg != "" {
			res.Deny, res.DenyReason, res.DenyMessage = true, protocol.ReasonPolicy, msg
		}
	}

	alerts, err := s.loginAlerts(p, l, at, res, flags, sc.Signals)
	if err != nil {
		s.log.Error("building login alerts failed", "user", l.UserID, "error", err)
	}
	res.Alerts = alerts
	return res, nil
}

// history reads the user's most recent sessions (newest first) and counts
// the active ones among them. Sessions older than the last HistorySize
// logins that are still active are not counted: with the default 50 that
// changes the count only when it is far above any sane threshold, and it
// saves a second query on every login. Errors are logged and give no history.
func (s *Service) history(ctx context.Context, p policy.Policy, userID string) ([]store.Session, int) {
	if userID == "" {
		return nil, 0
	}
	page, err := s.st.ListSessions(ctx, store.SessionQuery{UserID: userID, Limit: p.Score.HistorySize, Sort: "loginTime", Desc: true})
	if err != nil {
		s.log.Warn("reading login history failed; history signals skipped", "user", userID, "error", err)
		return nil, 0
	}
	active := 0
	for i := range page.Sessions {
		if page.Sessions[i].Active {
			active++
		}
	}
	return page.Sessions, active
}

// decide applies country, network and score rules; "" = allowed.
func decide(p policy.Policy, g *store.GeoLocation, f reputation.Flags, sc int) string {
	cc := ""
	if g != nil {
		cc = strings.ToUpper(g.CountryCode)
	}
	switch {
	case cc != "" && contains(p.BlockedCountries, cc):
		return fmt.Sprintf("Logins from %s are not allowed.", countryName(g))
	case len(p.AllowedCountries) > 0 && cc != "" && !contains(p.AllowedCountries, cc):
		return fmt.Sprintf("Logins from %s are not allowed.", countryName(g))
	case len(p.AllowedCountries) > 0 && cc == "" && p.DenyUnknownCountry:
		return "Logins from an unknown location are not allowed."
	case p.BlockTor && f.Tor:
		return "Logins through Tor are not allowed."
	case p.BlockThreat && f.Threat:
		return "Logins from this network are not allowed."
	case p.BlockVPN && f.VPN:
		return "Logins through a VPN are not allowed."
	case p.BlockProxy && f.Proxy:
		return "Logins through a proxy are not allowed."
	case p.BlockDatacenter && f.Datacenter:
		return "Logins from hosting networks are not allowed."
	case p.MinScore > 0 && sc < p.MinScore:
		return "This login looks unsafe and was refused."
	}
	return ""
}

func countryName(g *store.GeoLocation) string {
	if g.Country != "" {
		return g.Country
	}
	return g.CountryCode
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Service) channels(event string) []string {
	if s.cfg.AlertChannels == nil {
		return nil
	}
	return s.cfg.AlertChannels(event)
}

func (s *Service) loginAlerts(p policy.Policy, l Login, at time.Time, res Result, f reputation.Flags, sig score.Signals) ([]store.Alert, error) {
	var events []string
	add := func(on bool, e string) {
		if on && p.Alerts.Raises(e) {
			events = append(events, e)
		}
	}
	add(!res.Deny, alert.EventLoginSuccess)
	add(res.Score < p.Alerts.SuspiciousBelow || res.Deny, alert.EventLoginSuspicious)
	add(sig.NewCountry, alert.EventLoginNewLocation)
	add(f.VPN || f.Proxy || f.Tor, alert.EventLoginVPN)
	add(f.Threat, alert.EventLoginThreat)
	if len(events) == 0 {
		return nil, nil
	}
	scoreVal := res.Score
	base := alert.Payload{
		At: at, UserID: l.UserID, SessionID: l.SessionID, IP: l.IP, UserAgent: truncate(l.UserAgent, 512),
		Device: res.DeviceType, Browser: res.BrowserName, OS: res.OSName, Geo: res.Geo,
		Score: &scoreVal, Risk: res.Risk, Reasons: res.Reasons,
		Denied: res.Deny, DenyMessage: res.DenyMessage, Locale: l.Locale,
		Username: l.Username, Email: l.Email, IsVPN: f.VPN || f.Tor, IsProxy: f.Proxy, IsThreat: f.Threat,
	}
	var out []store.Alert
	for _, e := range events {
		pl := base
		pl.Event = e
		a, err := alert.NewAlerts(pl, s.channels(e), at)
		if err != nil {
			return out, err
		}
		out = append(out, a...)
	}
	return out, nil
}

// FailedLogin counts a failed login per address and per identifier
// (lockout.Guard.Failure) and says whether either is now locked.
func (s *Service) FailedLogin(ctx context.Context, f protocol.FailedLogin, now time.Time) (bool, error) {
	if now.IsZero() {
		now = time.Now()
	}
	lock, err := s.guard.Failure(ctx, lockout.Attempt{IP: f.IP, Identifier: f.Identifier, HasIdentifier: true}, now.UTC())
	return lock.Locked, err
}

// SessionEnded returns the alerts for ended sessions: one user.blocked per
// user when reason is protocol.ReasonBlocked, else one session.terminated
// per session whose reason the policy alerts on.
func (s *Service) SessionEnded(ctx context.Context, ended []store.Session, reason string, now time.Time) []store.Alert {
	if len(ended) == 0 {
		return nil
	}
	p := s.policy()
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	var out []store.Alert
	if reason == protocol.ReasonBlocked {
		byUser := map[string][]store.Session{}
		var users []string
		for _, e := range ended {
			if _, ok := byUser[e.UserID]; !ok {
				users = append(users, e.UserID)
			}
			byUser[e.UserID] = append(byUser[e.UserID], e)
		}
		for _, u := range users {
			out = append(out, s.UserBlocked(ctx, u, byUser[u], now)...)
		}
		return out
	}
	channels := s.channels(alert.EventSessionTerminated)
	if !p.Alerts.Raises(alert.EventSessionTerminated) || !contains(p.Alerts.TerminatedReasons, reason) || len(channels) == 0 {
		return nil
	}
	for _, e := range ended {
		sc := e.SecurityScore
		a, err := alert.NewAlerts(alert.Payload{
			Event: alert.EventSessionTerminated, At: now, UserID: e.UserID, SessionID: e.ID, IP: e.IP,
			Device: e.DeviceType, Browser: e.BrowserName, OS: e.OSName, Geo: e.Geo, Score: &sc,
			Reason: reason, Locale: e.Locale,
		}, channels, now)
		if err != nil {
			s.log.Error("building alert failed", "event", alert.EventSessionTerminated, "error", err)
			continue
		}
		out = append(out, a...)
	}
	return out
}

// UserBlocked returns one user.blocked alert per channel for userID, with
// the count of sessions the block ended (0 when the user had none: a block
// alerts all the same) and the locale of the latest of them.
func (s *Service) UserBlocked(ctx context.Context, userID string, ended []store.Session, now time.Time) []store.Alert {
	p := s.policy()
	channels := s.channels(alert.EventUserBlocked)
	if !p.Alerts.Raises(alert.EventUserBlocked) || len(channels) == 0 {
		return nil
	}
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	locale := ""
	if len(ended) > 0 {
		locale = ended[len(ended)-1].Locale
	}
	a, err := alert.NewAlerts(alert.Payload{Event: alert.EventUserBlocked, At: now, UserID: userID,
		Reason: protocol.ReasonBlocked, Sessions: len(ended), Locale: locale}, channels, now)
	if err != nil {
		s.log.Error("building alert failed", "event", alert.EventUserBlocked, "error", err)
		return nil
	}
	return a
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// locate finds addr in the GeoIP database: nil when it is not there or no
// database is loaded, and nil, logged, on any other failure.
func (s *Service) locate(addr netip.Addr) *store.GeoLocation {
	g, err := s.geo.Locate(addr)
	switch {
	case err == nil:
		return g
	case errors.Is(err, geoip.ErrNotFound), errors.Is(err, geoip.ErrUnavailable):
	default:
		s.log.Warn("geolocation failed", "ip", addr.String(), "error", err)
	}
	return nil
}
