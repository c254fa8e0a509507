// Package service assembles sessionsvc from its configuration: store,
// user-token verifier, keyring, HTTP server and lifecycle jobs, with
// graceful shutdown. cmd main (sessionsvc/main.go) is a thin wrapper
// around Run; tests and the e2e harness use New + Serve to run it in
// process.
package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/lifecycle"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

// Deps is what hooks get to build optional parts.
type Deps struct {
	Store    store.Store
	Logger   *slog.Logger
	Keyring  *secrets.Keyring
	Config   Config
	Settings func(ctx context.Context) settings.Settings
}

// Hooks plug optional parts in (all may be nil).
type Hooks struct {
	// Enricher builds the login enricher and the geolocation answerer.
	Enricher func(ctx context.Context, d Deps) (enrich.Enricher, server.Geolocator, error)
	// Mounts adds handlers (e.g. the admin dashboard) by ServeMux pattern.
	Mounts func(ctx context.Context, d Deps) (map[string]http.Handler, error)
	// Background runs alongside the server until its context ends (e.g. the
	// alert dispatcher). Serve waits for it on shutdown.
	Background []func(ctx context.Context, d Deps)
}

// Service is an assembled sessionsvc.
type Service struct {
	Config Config
	Store  store.Store
	Server *server.Server
	Logger *slog.Logger
	// InternalKey and AdminToken are the effective values; Generated* say
	// they were made up for development (and printed).
	InternalKey        string
	AdminToken         string
	GeneratedInternal  bool
	GeneratedAdmin     bool
	GeneratedKeyring   bool
	hooks              Hooks
	deps               Deps
	endIdleFromSetting bool
}

// NewLogger builds the slog logger for LOG_FORMAT / LOG_LEVEL.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func randomToken(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// devAdminName names admin tokens generated for development; each start
// revokes the previous one so only one is valid at a time.
const devAdminName = "dev (generated at start)"

// New opens the store and builds the server. endIdleSet tells whether
// END_IDLE_AFTER was configured (else it follows the inactivity timeout,
// including one an admin saves in the settings). Messages for the
// operator (generated development keys) go to out.
func New(ctx context.Context, cfg Config, endIdleSet bool, hooks Hooks, logger *slog.Logger, out io.Writer) (*Service, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if out == nil {
		out = io.Discard
	}
	svc := &Service{Config: cfg, Logger: logger, hooks: hooks, endIdleFromSetting: !endIdleSet}
	kr, err := secrets.ParseKeyring(cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	if !kr.Enabled() {
		k, err := secrets.GenerateKey()
		if err != nil {
			return nil, err
		}
		if kr, err = secrets.ParseKeyring(k); err != nil {
			return nil, err
		}
		svc.GeneratedKeyring = true
		logger.Warn("SESSION_ENCRYPTION_KEY is not set: secrets saved in settings use a key that lives only until restart")
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return nil, err
	}
	svc.Store = st
	fail := func(err error) (*Service, error) {
		_ = st.Close()
		return nil, err
	}
	svc.InternalKey = cfg.InternalKey
	if svc.InternalKey == "" {
		if svc.InternalKey, err = randomToken("dev_"); err != nil {
			return fail(err)
		}
		svc.GeneratedInternal = true
	}
	if err := svc.bootstrapAdmin(ctx); err != nil {
		return fail(err)
	}
	verifier, err := userauth.New(ctx, userauth.Config{Secret: cfg.JWTSecret, PublicKeyFile: cfg.JWTPublicKeyFile, JWKSURL: cfg.JWKSURL,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: logger})
	if err != nil {
		return fail(fmt.Errorf("user token verification: %w", err))
	}
	if !verifier.Configured() {
		logger.Warn("no JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWKS_URL: the user API answers 503 until one is set")
	}
	scfg := server.Config{Store: st, Logger: logger, InternalKey: svc.InternalKey, Users: verifier, Keyring: kr,
		InactivityTimeout: cfg.InactivityTimeout, RevocationTTL: cfg.MaxSessionAge, ActivityFlushInterval: cfg.ActivityFlush,
		UserTokenCookie: cfg.TokenCookie, DevRoutes: cfg.DevRoutes, CORSOrigins: cfg.CORSOrigins}
	var srv *server.Server
	svc.deps = Deps{Store: st, Logger: logger, Keyring: kr, Config: cfg,
		Settings: func(ctx context.Context) settings.Settings {
			if srv == nil {
				s, err := settings.Load(ctx, st, kr, cfg.InactivityTimeout)
				if err != nil {
					return settings.Defaults(cfg.InactivityTimeout)
				}
				return s
			}
			return srv.Settings(ctx)
		}}
	if hooks.Enricher != nil {
		e, g, err := hooks.Enricher(ctx, svc.deps)
		if err != nil {
			return fail(fmt.Errorf("enrichment: %w", err))
		}
		scfg.Enricher, scfg.Geolocator = e, g
	}
	if hooks.Mounts != nil {
		m, err := hooks.Mounts(ctx, svc.deps)
		if err != nil {
			return fail(fmt.Errorf("mounts: %w", err))
		}
		scfg.Mounts = m
	}
	srv, err = server.New(scfg)
	if err != nil {
		return fail(err)
	}
	svc.Server = srv
	if svc.GeneratedInternal || svc.GeneratedAdmin || svc.GeneratedKeyring {
		fmt.Fprintln(out, "sessionsvc development settings (set these variables to keep them stable):")
		if svc.GeneratedInternal {
			fmt.Fprintf(out, "  MESHSESSION_INTERNAL_KEY=%s\n", svc.InternalKey)
		}
		if svc.GeneratedAdmin {
			fmt.Fprintf(out, "  ADMIN_TOKEN=%s\n", svc.AdminToken)
		}
		if svc.GeneratedKeyring {
			fmt.Fprintln(out, "  SESSION_ENCRYPTION_KEY is unset: using a temporary key (generate one: openssl rand -base64 32)")
		}
	}
	return svc, nil
}

// bootstrapAdmin stores ADMIN_TOKEN (hashed) if it is new, or generates a
// development token when ADMIN_TOKEN is empty.
func (s *Service) bootstrapAdmin(ctx context.Context) error {
	now := time.Now().UTC()
	if s.Config.AdminToken != "" {
		if len(s.Config.AdminToken) < 16 {
			return errors.New("ADMIN_TOKEN: must be at least 16 characters")
		}
		s.AdminToken = s.Config.AdminToken
		h := server.HashAdminToken(s.AdminToken)
		if _, err := s.Store.FindAdminToken(ctx, h, now); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("bootstrap admin token: %w", err)
		}
		if _, err := s.Store.CreateAdminToken(ctx, "bootstrap (ADMIN_TOKEN)", h, now); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("bootstrap admin token: %w", err)
		}
		return nil
	}
	tok, err := randomToken("mss_dev_")
	if err != nil {
		return err
	}
	old, err := s.Store.ListAdminTokens(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	for _, t := range old {
		if t.Name == devAdminName && !t.Revoked {
			if err := s.Store.RevokeAdminToken(ctx, t.ID); err != nil {
				return fmt.Errorf("revoke previous development admin token: %w", err)
			}
		}
	}
	if _, err := s.Store.CreateAdminToken(ctx, devAdminName, server.HashAdminToken(tok), now); err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	s.AdminToken = tok
	s.GeneratedAdmin = true
	return nil
}

// Handler is the HTTP handler (for httptest or an in-process proxy).
func (s *Service) Handler() http.Handler { return s.Server.Handler() }

// policy is the lifecycle policy: flags where given, else the settings.
func (s *Service) policy(ctx context.Context) lifecycle.Policy {
	st := s.Server.Settings(ctx)
	p := lifecycle.Policy{IdleAfter: s.Config.EndIdleAfter, MaxAge: s.Config.MaxSessionAge, Retention: s.Config.Retention}
	if s.endIdleFromSetting {
		p.IdleAfter = st.InactivityDuration()
	}
	return p
}

// Serve serves on ln and runs the lifecycle jobs until ctx ends, then shuts
// down gracefully: no new connections, in-flight requests drained (up to
// ShutdownTimeout), background jobs stopped, buffered activity flushed,
// and the store closed last so every accepted write is committed.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Server.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	runner := lifecycle.New(lifecycle.Config{Store: s.Store, Logger: s.Logger, Interval: s.Config.CleanupInterval,
		Policy: func(ctx context.Context) lifecycle.Policy {
			if err := s.Server.ReloadSettings(ctx); err != nil {
				s.Logger.Warn("reloading settings failed", "err", err)
			}
			return s.policy(ctx)
		}})
	wg.Add(3)
	go func() { defer wg.Done(); runner.Run(bgCtx) }()
	go func() { defer wg.Done(); lifecycle.RunMerger(bgCtx, s.Store, lifecycle.MergeEvery, s.Logger) }()
	// The flusher writes what is still buffered once the server has drained.
	go func() { defer wg.Done(); s.Server.RunActivityFlusher(bgCtx) }()
	for _, bg := range s.hooks.Background {
		wg.Add(1)
		go func(f func(context.Context, Deps)) { defer wg.Done(); f(bgCtx, s.deps) }(bg)
	}
	// Load the sync feed before the first plugin asks: every proxy worker
	// starts with a snapshot, and building it from the log is the one
	// expensive read.
	warm := time.Now()
	if epoch, err := s.Store.Epoch(ctx); err == nil {
		if p, err := s.Store.Changes(ctx, epoch, 0, 1, time.Now()); err != nil {
			s.Logger.Warn("warming the sync feed failed", "err", err)
		} else {
			s.Logger.Info("sync feed loaded", "cursor", p.Cursor, "took", time.Since(warm).Round(time.Millisecond))
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.Logger.Info("sessionsvc listening", "addr", ln.Addr().String())
	var serveErr error
	select {
	case err := <-errc:
		serveErr = err
	case <-ctx.Done():
		s.Logger.Info("shutting down: draining in-flight requests", "timeout", s.Config.ShutdownTimeout)
	}
	timeout := s.Config.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.Logger.Warn("shutdown did not drain in time", "err", err)
		_ = hs.Close()
	}
	stopBG()
	wg.Wait()
	if err := s.Store.Close(); err != nil {
		s.Logger.Warn("closing the store", "err", err)
	}
	s.Logger.Info("sessionsvc stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// Close releases the store (when Serve was never called).
func (s *Service) Close() error { return s.Store.Close() }
