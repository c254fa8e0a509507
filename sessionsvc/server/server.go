// Package server is sessionsvc's HTTP server: the internal API for the
// proxy plugin (/internal/v1/…), the Strapi-compatible user API
// (/api/magic-sessionmanager/…) and admin API (/magic-sessionmanager/…),
// and the operational endpoints (/healthz, /readyz, /metrics).
//
// Build one with New and serve Handler(); everything it needs comes in
// through Config, so tests run it over httptest with a real store.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/meshsession/meshsession/sessionsvc/enrich/useragent"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

// Body size limits.
const (
	MaxInternalBody = 1 << 20  // 1 MiB: activity batches
	MaxAPIBody      = 64 << 10 // 64 KiB: user and admin API
)

// UserVerifier identifies the caller of the user API from their JWT.
// *userauth.Verifier implements it.
type UserVerifier interface {
	Verify(ctx context.Context, raw string) (userauth.Identity, error)
}

// Geolocator answers GET /magic-sessionmanager/geolocation/{ip}. The
// enrichment package provides one; without it the route answers 501.
type Geolocator interface {
	Geolocate(ctx context.Context, ip string) (any, error)
}

// Config is everything the server depends on. Store and InternalKey are
// required; the rest is optional.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// InternalKey is the shared key of the internal API (x-meshsession-key).
	InternalKey string
	// Enricher enriches logins and raises alerts; nil = score 100, allow,
	// no device info, no alerts.
	Enricher enrich.Enricher
	// Users verifies user JWTs; nil makes the user API answer 503.
	Users UserVerifier
	// Geolocator answers the admin geolocation route; nil = 501.
	Geolocator Geolocator
	// Keyring seals secrets in the settings document.
	Keyring *secrets.Keyring
	// InactivityTimeout drives isTrulyActive until an admin saves settings
	// (default 15 min).
	InactivityTimeout time.Duration
	// RevocationTTL bounds revocation and not-before entries whose token
	// expiry is unknown (default: store.DefaultRevocationTTL, 30 days).
	RevocationTTL time.Duration
	// Registry receives the server's metrics (a new one when nil); /metrics serves it.
	Registry *prometheus.Registry
	// Mounts adds handlers under extra ServeMux patterns (the admin dashboard).
	Mounts map[string]http.Handler
	// ActivityFlushInterval > 0 buffers activity marks in memory (latest
	// per key) and writes them this often (RunActivityFlusher); 0 writes
	// each batch through before answering.
	ActivityFlushInterval time.Duration
	// ActivityMaxPending flushes early when this many keys are buffered
	// (default 100,000).
	ActivityMaxPending int
	// SyncLimit is the default page size of the sync feed (default 5000).
	SyncLimit int
	// UserTokenCookie is the cookie the user API also takes the token from
	// (the proxy's token_cookie); "" = bearer only.
	UserTokenCookie string
	// DevRoutes enables development-only admin routes
	// (sessions/{id}/simulate-timeout).
	DevRoutes bool
	// GeoIP reports and reloads the GeoIP database (geoip/* routes); nil
	// reports "no database".
	GeoIP GeoIPAdmin
	// CORSOrigins are the origins browsers may call the user and admin
	// APIs from: "*" for any (never with credentials), else exact origins
	// (scheme://host[:port]); empty = no CORS (ParseCORSOrigins reads
	// CORS_ORIGINS).
	CORSOrigins []string
	Now         func() time.Time
}

// Server is the HTTP server. Create it with New.
type Server struct {
	cfg         Config
	st          store.Store
	log         *slog.Logger
	key         []byte
	now         func() time.Time
	metrics     *metrics
	mux         *http.ServeMux
	handler     http.Handler // mux behind CORS (cors.go)
	settings    atomic.Pointer[loadedSettings]
	reloading   atomic.Bool     // one request rereads stale settings; the others use them meanwhile
	activityBuf *activityBuffer // nil in write-through mode
	setMu       sync.Mutex      // serialises settings read-modify-write
	patterns    []string        // registered routes (Routes, the OpenAPI coverage test)
	limiter     *limiter        // user API rate limits
	uaOnce      sync.Once       // ua is built on first use (session discovery)
	ua          *useragent.Parser
	waiting     atomic.Int64     // sync requests in a long-poll
	nowUTCFunc  func() time.Time // s.nowUTC, bound once (a long-poll hands it on)
	syncBinary  encodedPages     // the last sync answers encoded, per format (longpoll.go)
	syncJSON    encodedPages
	lp          loginProtection // loginprotect.go
	listBodies  chan []byte     // admin list answers' buffers, kept for the next answers (adminList)
}

// New builds a server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Store is required")
	}
	if len(cfg.InternalKey) < 16 {
		return nil, errors.New("server: InternalKey (MESHSESSION_INTERNAL_KEY) must be at least 16 characters")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InactivityTimeout <= 0 {
		cfg.InactivityTimeout = 15 * time.Minute
	}
	if cfg.RevocationTTL <= 0 {
		cfg.RevocationTTL = store.DefaultRevocationTTL
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Keyring == nil {
		cfg.Keyring = &secrets.Keyring{}
	}
	if cfg.SyncLimit <= 0 {
		cfg.SyncLimit = 5000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg: cfg, st: cfg.Store, log: cfg.Logger, key: []byte(cfg.InternalKey), now: cfg.Now,
		mux: http.NewServeMux(), limiter: newLimiter(), listBodies: make(chan []byte, 4),
	}
	s.nowUTCFunc = s.nowUTC
	if cfg.ActivityFlushInterval > 0 {
		if cfg.ActivityMaxPending <= 0 {
			cfg.ActivityMaxPending = 100_000
		}
		s.cfg.ActivityMaxPending = cfg.ActivityMaxPending
		s.activityBuf = newActivityBuffer(cfg.Store, cfg.ActivityMaxPending)
	}
	m, err := newMetrics(cfg.Registry, s.countActive)
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	s.metrics = m
	if err := s.registerOpsMetrics(cfg.Registry); err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	if err := s.initLoginProtection(); err != nil {
		return nil, fmt.Errorf("server: login protection: %w", err)
	}
	s.routes()
	s.handler = s.mux
	cors, err := newCORSPolicy(cfg.CORSOrigins)
	if err != nil {
		return nil, fmt.Errorf("server: CORSOrigins: %w", err)
	}
	if cors != nil {
		s.handler = s.withCORS(cors, s.mux)
	}
	return s, nil
}

// Handler is the server's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry is the Prometheus registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

func (s *Server) nowUTC() time.Time { return s.now().UTC() }

// SettingsMaxAge is how long a replica uses the settings it read before
// reading them again: a change saved on another replica is in effect here
// within this time (on the replica that saved it, at once).
const SettingsMaxAge = 5 * time.Second

// loadedSettings are the settings as read at a time.
type loadedSettings struct {
	settings.Settings
	at time.Time
}

// Settings returns the effective settings: the copy read within the last
// SettingsMaxAge, else read again (by one caller; the others keep using
// the older copy meanwhile, and all of them keep it if the read fails).
func (s *Server) Settings(ctx context.Context) settings.Settings {
	p := s.settings.Load()
	if p != nil && s.now().Sub(p.at) < SettingsMaxAge {
		return p.Settings
	}
	if p != nil {
		if !s.reloading.CompareAndSwap(false, true) {
			return p.Settings
		}
		defer s.reloading.Store(false)
	}
	if err := s.ReloadSettings(ctx); err != nil {
		if p != nil {
			s.log.Warn("rereading settings failed; keeping those read before", "err", err, "readAt", p.at)
			return p.Settings
		}
		s.log.Warn("loading settings failed; using defaults", "err", err)
		return settings.Defaults(s.cfg.InactivityTimeout)
	}
	return s.settings.Load().Settings
}

// ReloadSettings rereads the settings document (another replica may have
// changed it). The lifecycle runner calls it on every run. It holds the
// settings lock, so that a read taken before an admin's save cannot
// replace the saved settings after it.
func (s *Server) ReloadSettings(ctx context.Context) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	cur, err := settings.Load(ctx, s.st, s.cfg.Keyring, s.cfg.InactivityTimeout)
	if err != nil {
		return err
	}
	s.keepSettings(cur)
	return nil
}

// keepSettings makes cur the settings in effect, as read now.
func (s *Server) keepSettings(cur settings.Settings) {
	s.settings.Store(&loadedSettings{Settings: cur, at: s.now()})
}

// InactivityTimeout is the effective inactivity timeout.
func (s *Server) InactivityTimeout(ctx context.Context) time.Duration {
	return s.Settings(ctx).InactivityDuration()
}

func (s *Server) countActive(ctx context.Context) (float64, error) {
	p, err := s.st.ListSessions(ctx, store.SessionQuery{ActiveOnly: true, Limit: 1})
	if err != nil {
		return 0, err
	}
	return float64(p.Total), nil
}

func (s *Server) routes() {
	// Internal API (plugin).
	s.handle("POST /internal/v1/sessions", authInternal, s.register)
	s.handle("POST /internal/v1/sessions/tokens", authInternal, s.refresh)
	s.handle("POST /internal/v1/revoke", authInternal, s.revoke)
	s.handle("POST /internal/v1/activity", authInternal, s.activity)
	s.handle("POST /internal/v1/logins/failed", authInternal, s.failedLogin)
	s.handle("POST /internal/v1/logins/unreadable", authInternal, s.unreadableLogin)
	s.handle("GET /internal/v1/sync", authInternal, s.sync)
	s.loginProtectionRoutes()

	// User API.
	const u = "/api/magic-sessionmanager"
	s.handle("GET "+u+"/my-sessions", authUser, s.userSessions)
	s.handle("GET "+u+"/current-session", authUser, s.currentSession)
	s.handle("GET "+u+"/user/{userId}/sessions", authUser, s.userSessionsByID)
	s.handle("POST "+u+"/logout", authUser, s.logout)
	s.handle("POST "+u+"/logout-all", authUser, s.logoutAll)
	s.handle("POST "+u+"/logout-others", authUser, s.logoutOthers)
	s.handle("DELETE "+u+"/my-sessions/{sessionId}", authUser, s.deleteMySession)

	// Admin API.
	const a = "/magic-sessionmanager"
	s.handle("GET "+a+"/sessions", authAdmin, s.adminSessions)
	s.handle("GET "+a+"/sessions/active", authAdmin, s.adminActiveSessions)
	s.handle("GET "+a+"/user/{userId}/sessions", authAdmin, s.adminUserSessions)
	s.handle("POST "+a+"/sessions/{sessionId}/terminate", authAdmin, s.adminTerminate)
	s.handle("DELETE "+a+"/sessions/{sessionId}", authAdmin, s.adminDelete)
	s.handle("POST "+a+"/user/{userId}/terminate-all", authAdmin, s.adminTerminateAll)
	s.handle("POST "+a+"/user/{userId}/toggle-block", authAdmin, s.adminToggleBlock)
	s.handle("POST "+a+"/sessions/clean-inactive", authAdmin, s.adminCleanInactive)
	s.handle("GET "+a+"/settings", authAdmin, s.adminGetSettings)
	s.handle("PUT "+a+"/settings", authAdmin, s.adminPutSettings)
	s.handle("GET "+a+"/geolocation/{ip}", authAdmin, s.adminGeolocation)
	s.compatRoutes(a)

	// Operations.
	s.handle("GET /healthz", authNone, s.healthz)
	s.handle("GET /readyz", authNone, s.readyz)
	s.handle("GET /openapi.json", authNone, s.serveOpenAPI)
	s.mux.Handle("GET /metrics", s.metrics.handler(s.cfg.Registry))
	s.patterns = append(s.patterns, "GET /metrics")
	for pattern, h := range s.cfg.Mounts {
		s.mux.Handle(pattern, h)
	}
	s.mux.HandleFunc("/", s.noRoute)
}

type authKind int

const (
	authNone authKind = iota
	authInternal
	authUser
	authAdmin
)

// handlerFunc is an endpoint; a returned error becomes a JSON error answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type ctxKey int

const (
	ctxIdentity ctxKey = iota
	ctxAdmin
	ctxAuditNote // auditNote of an audited admin route (audit.go)
)

// noStore is every answer's Cache-Control, built once.
var noStore = []string{"no-store"}

func (s *Server) handle(pattern string, auth authKind, h handlerFunc) {
	limit := int64(MaxAPIBody)
	if auth == authInternal {
		limit = MaxInternalBody
	}
	route := pattern
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, s.metrics.instrument(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		w.Header()["Cache-Control"] = noStore
		if msg := URLTextProblem(r); msg != "" {
			writeError(w, r, s.log, badRequest("%s", msg))
			return
		}
		var err error
		switch auth {
		case authInternal:
			err = s.checkInternalKey(r)
		case authUser:
			if r, err = s.authenticateUser(r); err == nil {
				err = s.rateLimitUser(w, r)
			}
		case authAdmin:
			r, err = s.authenticateAdmin(r)
		}
		if err == nil && auth == authAdmin {
			err = s.audited(pattern, w, r, h) // audit.go
		} else if err == nil {
			err = h(w, r)
		}
		if err != nil {
			writeError(w, r, s.log, err)
		}
	})))
}

// hashToken is the stored form of an admin token: hex SHA-256.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// HashAdminToken is the hex SHA-256 under which admin tokens are stored.
func HashAdminToken(tok string) string { return hashToken(tok) }

// noRoute answers JSON 405 when the path exists for other methods, else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, s.log, &apiError{Status: http.StatusMethodNotAllowed,
			Message: r.Method + " is not allowed on " + r.URL.Path + " (allowed: " + strings.Join(allowed, ", ") + ")"})
		return
	}
	writeError(w, r, s.log, &apiError{Status: http.StatusNotFound, Message: "no route for " + r.Method + " " + r.URL.Path})
}
