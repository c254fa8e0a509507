// Package demoapp is a small HTTP application that stands in for the user's
// app behind the proxy. It behaves the way a Strapi v5 app with the
// users-permissions plugin does: local login issuing HS256 access tokens and
// rotating refresh tokens, refresh, logout, and protected resources under
// /api/ that verify the access token themselves.
//
// The app is deliberately stateless about access tokens (as Strapi is): a
// token stays valid until it expires, whatever happens to the session. Ending
// sessions early is meshsession's job, at the proxy.
//
// Protected resources echo the identity headers the proxy injected
// (x-session-id, x-user-id) so end-to-end tests can check them: in the
// response headers X-Echo-Session-Id / X-Echo-User-Id and, for
// GET /api/articles and GET /api/echo, in the JSON body.
package demoapp

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshsession/meshsession/internal/strapi"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultSecret     = "meshsession-demo-secret"
	DefaultTokenTTL   = 30 * time.Minute
	DefaultRefreshTTL = 7 * 24 * time.Hour
)

// Identity headers injected by the proxy and echoed back by protected resources.
const (
	HeaderSessionID     = "x-session-id"
	HeaderUserID        = "x-user-id"
	HeaderEchoSessionID = "X-Echo-Session-Id"
	HeaderEchoUserID    = "X-Echo-User-Id"
)

// maxBodyBytes bounds every request body the app reads.
const maxBodyBytes = 1 << 20

// User is a seeded account.
type User struct {
	ID       int64
	Username string
	Email    string
	Password string
}

// DefaultUsers returns the seeded accounts used when Config.Users is empty:
// alice, bob and carol, each with password "<name>-password".
func DefaultUsers() []User {
	return []User{
		{ID: 1, Username: "alice", Email: "alice@example.com", Password: "alice-password"},
		{ID: 2, Username: "bob", Email: "bob@example.com", Password: "bob-password"},
		{ID: 3, Username: "carol", Email: "carol@example.com", Password: "carol-password"},
	}
}

// Config configures the demo app. Every zero field gets a default.
type Config struct {
	// Secret signs and verifies HS256 access tokens (default DefaultSecret).
	Secret string
	// Issuer, when set, is the "iss" claim of access tokens (an Istio
	// RequestAuthentication names the issuer it accepts).
	Issuer string
	// TokenTTL is the access-token lifetime (default DefaultTokenTTL).
	TokenTTL time.Duration
	// RefreshTTL is the refresh-token lifetime (default DefaultRefreshTTL).
	RefreshTTL time.Duration
	// SIDClaim adds a "sid" claim (the session id, kept across refreshes)
	// to access tokens. Without it tokens carry no session claim at all and
	// sessions are known to the proxy by token fingerprint only.
	SIDClaim bool
	// Users are the accounts that can log in (default DefaultUsers()).
	Users []User
	// Now is the clock (default time.Now). Tests set it.
	Now func() time.Time
	// Logger receives one line per request (default: discard).
	Logger *slog.Logger
}

// App is the demo application. It is an http.Handler; create it with New.
// All state lives in memory and is safe for concurrent use.
type App struct {
	cfg    Config
	secret []byte
	mux    *http.ServeMux
	log    *slog.Logger

	byID    map[int64]User
	byLogin map[string]User // lower-cased username and email

	mu        sync.Mutex
	refresh   map[string]*refreshEntry // sha256 of the refresh token -> entry
	sessions  map[string]*session      // session id -> session
	access    map[string]accessEntry   // access-token nonce -> session
	lastPrune time.Time

	loginRequests atomic.Int64 // login requests whose body (the credentials) was read
}

// LoginRequests is how many login requests' credentials reached the app
// (their body was read, whatever the outcome): tests use it to show that a
// login refused at the proxy never delivered its password. (Under Envoy a
// request refused after its headers went upstream is reset before its
// body: its headers may arrive, its body never does.)
func (a *App) LoginRequests() int64 { return a.loginRequests.Load() }

// New returns the demo app configured by cfg (zero fields get defaults).
func New(cfg Config) *App {
	if cfg.Secret == "" {
		cfg.Secret = DefaultSecret
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if len(cfg.Users) == 0 {
		cfg.Users = DefaultUsers()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{
		cfg:      cfg,
		secret:   []byte(cfg.Secret),
		log:      cfg.Logger,
		byID:     make(map[int64]User, len(cfg.Users)),
		byLogin:  make(map[string]User, 2*len(cfg.Users)),
		refresh:  make(map[string]*refreshEntry),
		sessions: make(map[string]*session),
		access:   make(map[string]accessEntry),
	}
	for _, u := range cfg.Users {
		a.byID[u.ID] = u
		a.byLogin[strings.ToLower(u.Username)] = u
		a.byLogin[strings.ToLower(u.Email)] = u
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("/healthz", only(http.MethodGet, a.handleHealth))
	a.mux.HandleFunc("/api/auth/local", only(http.MethodPost, a.handleLogin))
	a.mux.HandleFunc("/api/auth/refresh", only(http.MethodPost, a.handleRefresh))
	a.mux.HandleFunc("/api/auth/logout", only(http.MethodPost, a.handleLogout))
	a.mux.HandleFunc("/api/echo", only(http.MethodGet, a.handleEcho))
	a.mux.HandleFunc("/api/users/me", only(http.MethodGet, a.protected(a.handleMe)))
	a.mux.HandleFunc("/api/articles", only(http.MethodGet, a.protected(a.handleArticles)))
	a.mux.HandleFunc("/api/articles/{id}", only(http.MethodGet, a.protected(a.handleArticle)))
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		strapi.WriteError(w, http.StatusNotFound, "NotFoundError", "Not Found", nil)
	})
	return a
}

// ServeHTTP implements http.Handler and logs one line per request.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	a.mux.ServeHTTP(rec, r)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.String("session_id", r.Header.Get(HeaderSessionID)),
		slog.String("user_id", r.Header.Get(HeaderUserID)),
		slog.Duration("duration", time.Since(start)),
	)
}

// only restricts h to one method, answering 405 with Allow otherwise.
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			strapi.WriteError(w, http.StatusMethodNotAllowed, "MethodNotAllowedError", "Method Not Allowed", nil)
			return
		}
		h(w, r)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
