// Package dashboard is sessionsvc's admin dashboard: a small single-page
// application (hand-written HTML, CSS and JavaScript embedded in the
// binary, no build step, no CDN) and the JSON endpoints it calls, all under
// /dashboard/. The page's texts are JSON catalogues, web/i18n/<lang>.json,
// served joined as static/i18n.js.
//
// Design:
//
//   - Sign-in takes an admin token, checks it against the store's admin
//     tokens and answers with a sealed cookie (AES-256-GCM under the
//     SESSION_ENCRYPTION_KEY keyring) holding the token, an expiry and a CSRF
//     secret. Nothing is kept in server memory, so any replica that shares
//     the key accepts the cookie; every request re-validates the token
//     against the store, so revoking the admin token ends the dashboard
//     session at once.
//   - State changes (terminate, block, settings) are forwarded in process to
//     the admin API (/magic-sessionmanager/…) with the admin token as the
//     bearer, so they behave exactly as API calls do: the same validation,
//     revocation log entries, alerts, metrics, audit log lines and settings
//     cache refresh. Pages read through the same API where it has what they
//     need; what it lacks (overview figures, one session, block state,
//     export, failed deliveries, live events) is answered here from the
//     store (and, for aggregate figures, a read-only SQL connection).
//   - The cookie is HttpOnly, SameSite=Strict, and Secure with the __Host-
//     prefix whenever the browser talks HTTPS (TLS here, or
//     X-Forwarded-Proto: https from a proxy) or the host is not a loopback
//     name; only plain HTTP to localhost/127.0.0.1/::1 (development) gets a
//     non-Secure cookie, since browsers drop Secure cookies there.
//   - Every state change needs the session's CSRF token in X-CSRF-Token
//     (a synchronizer token sealed in the cookie, handed to the page by
//     /api/me) and a same-origin Origin / Sec-Fetch-Site when sent.
//   - Every response carries a strict Content-Security-Policy (no inline
//     script or style), frame-ancestors 'none' and no-store for data.
//   - The sessions table pages through the store's indexes and counts
//     matches only up to countCap, so it stays fast with millions of
//     sessions; a search that names a user or session exactly uses an
//     index, "search all fields" is a substring scan.
//   - Live updates are Server-Sent Events: one poller per process reads
//     sessions started or ended since its last look (login_time and
//     logout_time indexes) every second while someone listens.
package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Prefix is where the dashboard is mounted.
const Prefix = "/dashboard"

//go:embed web
var webFS embed.FS

// Store is what the dashboard uses of the store directly (its admin
// actions go through the admin API): sessions, block state, the admin
// tokens that sign it in, the alert outbox, the sign-in throttle's failed
// logins and the audit trail.
type Store interface {
	store.Sessions
	store.Users
	store.AdminTokens
	store.AlertOutbox
	store.FailedLogins
	store.Audit
}

// Config is what the dashboard needs.
type Config struct {
	Store   Store
	Logger  *slog.Logger
	Keyring *secrets.Keyring
	// Settings returns the effective settings (inactivity timeout).
	Settings func(ctx context.Context) settings.Settings
	// DatabaseURL, when it names a file or server, lets the dashboard open
	// a read-only connection for aggregate figures (overview, live events).
	DatabaseURL string
	// API is the handler that serves the admin API. Nil: the handler of
	// the http.Server serving the request (http.ServerContextKey), which
	// is sessionsvc's own.
	API http.Handler
	// SessionTTL is how long a dashboard sign-in lasts (default 8 h).
	SessionTTL time.Duration
	// PollInterval is how often live events poll the database (default 1 s).
	PollInterval time.Duration
	Now          func() time.Time
}

// Dashboard serves the dashboard. Create it with New.
type Dashboard struct {
	cfg    Config
	st     Store
	log    *slog.Logger
	kr     *secrets.Keyring
	now    func() time.Time
	mux    *http.ServeMux
	index  *template.Template
	assets map[string]asset
	stats  *statsDB // nil when no SQL connection is available
	hub    *hub
	ov     overviewCache
	an     analyticsCache
	shutMu sync.Mutex
	shut   map[*http.Server]chan struct{}
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Mounts is the service hook: hooks.Mounts = dashboard.Mounts.
func Mounts(ctx context.Context, d service.Deps) (map[string]http.Handler, error) {
	db, err := New(ctx, Config{Store: d.Store, Logger: d.Logger, Keyring: d.Keyring, Settings: d.Settings,
		DatabaseURL: d.Config.DatabaseURL})
	if err != nil {
		return nil, err
	}
	d.Logger.Info("admin dashboard mounted", "path", Prefix+"/", "figures", db.stats != nil)
	return db.Mounts(), nil
}

// New builds a dashboard.
func New(ctx context.Context, cfg Config) (*Dashboard, error) {
	if cfg.Store == nil {
		return nil, errors.New("dashboard: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Settings == nil {
		cfg.Settings = func(context.Context) settings.Settings { return settings.Defaults(15 * time.Minute) }
	}
	kr := cfg.Keyring
	if !kr.Enabled() {
		// Sign-ins then last until a restart and work on this replica only.
		k, err := secrets.GenerateKey()
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		if kr, err = secrets.ParseKeyring(k); err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		cfg.Logger.Warn("dashboard: no SESSION_ENCRYPTION_KEY; dashboard sign-ins end on restart")
	}
	d := &Dashboard{cfg: cfg, st: cfg.Store, log: cfg.Logger, kr: kr, now: cfg.Now, mux: http.NewServeMux()}
	if err := d.loadAssets(); err != nil {
		return nil, err
	}
	if cfg.DatabaseURL != "" {
		s, err := openStats(ctx, cfg.DatabaseURL)
		if err != nil {
			cfg.Logger.Warn("dashboard: no read-only connection for figures; the overview shows less", "err", err)
		} else {
			d.stats = s
		}
	}
	d.hub = newHub(d)
	d.routes()
	return d, nil
}

// Close releases the read-only connection.
func (d *Dashboard) Close() error {
	if d.stats != nil {
		return d.stats.close()
	}
	return nil
}

// Mounts returns the ServeMux patterns to add to sessionsvc.
func (d *Dashboard) Mounts() map[string]http.Handler {
	return map[string]http.Handler{Prefix + "/": d, Prefix: http.RedirectHandler(Prefix+"/", http.StatusFound)}
}

// ServeHTTP serves everything under Prefix.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if msg := server.URLTextProblem(r); msg != "" {
		server.WriteError(w, http.StatusBadRequest, msg, map[string]any{"code": "invalid_url"})
		return
	}
	d.mux.ServeHTTP(w, r)
}

// csp allows only the dashboard's own files: no inline script or style, no
// framing, no plugins, no foreign connections.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

func (d *Dashboard) routes() {
	const p = Prefix
	d.mux.HandleFunc("GET "+p+"/{$}", d.serveIndex)
	d.mux.HandleFunc("GET "+p+"/static/{file}", d.serveAsset)

	d.mux.HandleFunc("POST "+p+"/api/login", d.login)
	d.mux.HandleFunc("GET "+p+"/api/me", d.authed(d.me))
	d.mux.HandleFunc("GET "+p+"/api/session", d.sessionState)
	d.mux.HandleFunc("POST "+p+"/api/logout", d.authed(d.logout))

	d.mux.HandleFunc("GET "+p+"/api/overview", d.authed(d.overview))
	d.mux.HandleFunc("GET "+p+"/api/analytics", d.authed(d.analytics))
	d.mux.HandleFunc("POST "+p+"/api/bulk", d.authed(d.bulk))
	d.mux.HandleFunc("GET "+p+"/api/audit", d.authed(d.listAudit))
	d.mux.HandleFunc("GET "+p+"/api/audit/export", d.authed(d.exportAudit))
	d.mux.HandleFunc("GET "+p+"/api/lockouts", d.authed(d.listLockouts))
	d.mux.HandleFunc("POST "+p+"/api/lockouts/unlock", d.authed(d.unlock))
	d.mux.HandleFunc("GET "+p+"/api/sessions", d.authed(d.listSessions))
	d.mux.HandleFunc("GET "+p+"/api/sessions/{id}", d.authed(d.sessionDetail))
	d.mux.HandleFunc("POST "+p+"/api/sessions/{id}/terminate", d.authed(d.terminate))
	d.mux.HandleFunc("GET "+p+"/api/export", d.authed(d.export))
	d.mux.HandleFunc("GET "+p+"/api/events", d.authed(d.events))
	d.mux.HandleFunc("GET "+p+"/api/users/{id}", d.authed(d.userView))
	d.mux.HandleFunc("POST "+p+"/api/users/{id}/terminate-all", d.authed(d.terminateAll))
	d.mux.HandleFunc("POST "+p+"/api/users/{id}/block", d.authed(d.block))
	d.mux.HandleFunc("GET "+p+"/api/settings", d.authed(d.getSettings))
	d.mux.HandleFunc("PUT "+p+"/api/settings", d.authed(d.putSettings))
	d.mux.HandleFunc("GET "+p+"/api/alerts", d.authed(d.listAlerts))
	d.mux.HandleFunc("POST "+p+"/api/alerts/{id}/retry", d.authed(d.retryAlert))
	d.mux.HandleFunc(p+"/api/", func(w http.ResponseWriter, r *http.Request) {
		server.WriteError(w, http.StatusNotFound, "no dashboard endpoint "+r.Method+" "+r.URL.Path, nil)
	})
	d.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Not found. The dashboard is at "+Prefix+"/", http.StatusNotFound)
	})
}

func (d *Dashboard) loadAssets() error {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		return fmt.Errorf("dashboard assets: %w", err)
	}
	idx, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		return fmt.Errorf("dashboard assets: %w", err)
	}
	d.assets = map[string]asset{}
	entries, err := fs.ReadDir(sub, "static")
	if err != nil {
		return fmt.Errorf("dashboard assets: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(sub, "static/"+e.Name())
		if err != nil {
			return fmt.Errorf("dashboard assets: %w", err)
		}
		d.addAsset(e.Name(), b)
	}
	script, err := i18nScript(sub)
	if err != nil {
		return err
	}
	d.addAsset("i18n.js", script)
	// Asset URLs carry their hash so browsers may cache them for good.
	funcs := template.FuncMap{"asset": func(name string) string {
		return Prefix + "/static/" + name + "?v=" + strings.Trim(d.assets[name].etag, `"`)
	}}
	t, err := template.New("index").Funcs(funcs).Parse(string(idx))
	if err != nil {
		return fmt.Errorf("dashboard index template: %w", err)
	}
	d.index = t
	return nil
}

func (d *Dashboard) addAsset(name string, body []byte) {
	sum := sha256.Sum256(body)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	d.assets[name] = asset{body: body, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// i18nScript joins the text catalogues, web/i18n/<lang>.json (a plain JSON
// object a language, so each stays a data file translators can edit alone),
// into the script the page loads before app.js: window.MSS_I18N[lang][key].
func i18nScript(web fs.FS) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("\"use strict\";\nwindow.MSS_I18N = {")
	for i, lang := range languages {
		cat, err := fs.ReadFile(web, "i18n/"+lang+".json")
		if err != nil {
			return nil, fmt.Errorf("dashboard texts: %w", err)
		}
		if !json.Valid(cat) {
			return nil, fmt.Errorf("dashboard texts: i18n/%s.json is not valid JSON", lang)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n%q: %s", lang, bytes.TrimSpace(cat))
	}
	b.WriteString("};\n")
	return b.Bytes(), nil
}

func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	lang := pickLanguage(r.Header.Get("Accept-Language"))
	var buf bytes.Buffer
	if err := d.index.Execute(&buf, map[string]string{"Lang": lang}); err != nil {
		d.log.Error("dashboard: rendering index", "err", err)
		http.Error(w, "dashboard unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept-Language")
	_, _ = w.Write(buf.Bytes())
}

func (d *Dashboard) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := d.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	if r.URL.Query().Get("v") != "" {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}
