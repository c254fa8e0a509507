// Package wire plugs enrichment and alert delivery into sessionsvc: it
// reads their environment variables and returns the service.Hooks that
// build the enricher (and geolocation answerer) and run the reloaders, the
// policy refresher and the alert dispatcher.
//
// In sessionsvc's main:
//
//	hooks := wire.Hooks(os.Getenv, dashboard.Mounts) // the dashboard beside the outbox routes
//	service.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, hooks)
package wire

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshsession/meshsession/internal/periodic"
	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/enrich/policy"
	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Environment variables (besides alert.ChannelsFromEnv's SMTP_* / ALERT_EMAIL_TO / WEBHOOK_*).
const (
	EnvGeoIP          = "GEOIP_DB"              // path of a MaxMind-format .mmdb (City or Country)
	EnvTorFile        = "IPREP_TOR_FILE"        // Tor exit addresses
	EnvVPNFile        = "IPREP_VPN_FILE"        // VPN ranges
	EnvProxyFile      = "IPREP_PROXY_FILE"      // proxy ranges
	EnvDatacenterFile = "IPREP_DATACENTER_FILE" // hosting/datacenter ranges
	EnvThreatFile     = "IPREP_THREAT_FILE"     // known threats
	EnvReload         = "ENRICH_RELOAD_INTERVAL"
	EnvPolicyFile     = "SECURITY_POLICY_FILE" // JSON policy (weights, lockout, alerts) under the settings
	EnvPolicyRefresh  = "SECURITY_POLICY_REFRESH"
	EnvAlertAttempts  = "ALERT_MAX_ATTEMPTS"
)

// Config is what the environment says.
type Config struct {
	Enrich         enrich.Config
	BasePolicy     policy.Policy
	Channels       alert.ChannelsConfig
	PolicyRefresh  time.Duration
	AlertAttempts  int
	ReloadInterval time.Duration
}

// ConfigFromEnv reads and validates the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{BasePolicy: policy.Default(), PolicyRefresh: 2 * time.Second, AlertAttempts: alert.DefaultMaxAttempts}
	c.Enrich.GeoIPPath = strings.TrimSpace(getenv(EnvGeoIP))
	c.Enrich.Reputation = reputation.Files{
		Tor: strings.TrimSpace(getenv(EnvTorFile)), VPN: strings.TrimSpace(getenv(EnvVPNFile)),
		Proxy: strings.TrimSpace(getenv(EnvProxyFile)), Datacenter: strings.TrimSpace(getenv(EnvDatacenterFile)),
		Threat: strings.TrimSpace(getenv(EnvThreatFile)),
	}
	dur := func(name string, def time.Duration) (time.Duration, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%s: %q is not a positive duration (e.g. 30s)", name, v)
		}
		return d, nil
	}
	var err error
	if c.Enrich.ReloadInterval, err = dur(EnvReload, 30*time.Second); err != nil {
		return Config{}, err
	}
	if c.PolicyRefresh, err = dur(EnvPolicyRefresh, 2*time.Second); err != nil {
		return Config{}, err
	}
	if v := strings.TrimSpace(getenv(EnvAlertAttempts)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return Config{}, fmt.Errorf("%s: %q is not a number within 1..100", EnvAlertAttempts, v)
		}
		c.AlertAttempts = n
	}
	if path := strings.TrimSpace(getenv(EnvPolicyFile)); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvPolicyFile, err)
		}
		if c.BasePolicy, err = policy.Parse(b); err != nil {
			return Config{}, fmt.Errorf("%s %s: %w", EnvPolicyFile, path, err)
		}
	}
	if c.Channels, err = alert.ChannelsFromEnv(getenv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// runtimeStore is what the runtime itself uses of the store: the settings
// it refreshes from and the outbox its dispatcher delivers.
type runtimeStore interface {
	store.Settings
	store.AlertOutbox
}

// Runtime holds what the hooks built; exposed for tests.
type Runtime struct {
	cfg      Config
	Service  *enrich.Service
	Policy   *policy.Holder
	channels atomic.Pointer[alert.ChannelsConfig]
	settings func(context.Context) settings.Settings
	st       runtimeStore
	log      *slog.Logger

	mu         sync.Mutex
	lastErr    string
	sendersFor *alert.ChannelsConfig
	senders    map[string]alert.Sender
}

// Hooks returns the sessionsvc hooks for enrichment and alerts, mounting
// the alert outbox routes (Mounts) and those of mounts (e.g. the
// dashboard's) together. A bad environment makes sessionsvc refuse to
// start, naming the variable.
func Hooks(getenv func(string) string, mounts ...MountsFunc) service.Hooks {
	var rt *Runtime
	return service.Hooks{
		Enricher: func(ctx context.Context, d service.Deps) (enrich.Enricher, server.Geolocator, error) {
			cfg, err := ConfigFromEnv(getenv)
			if err != nil {
				return nil, nil, err
			}
			rt, err = New(cfg, d)
			if err != nil {
				return nil, nil, err
			}
			return rt.Service, rt.Service, nil
		},
		Mounts: CombineMounts(append([]MountsFunc{Mounts}, mounts...)...),
		Background: []func(ctx context.Context, d service.Deps){
			func(ctx context.Context, _ service.Deps) {
				if rt != nil {
					rt.Run(ctx)
				}
			},
		},
	}
}

// New builds the enrichment service on d's store, with the policy and
// channels taken from d's settings (over cfg's base policy and env channels).
func New(cfg Config, d service.Deps) (*Runtime, error) {
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rt := &Runtime{cfg: cfg, Policy: policy.NewHolder(&cfg.BasePolicy), settings: d.Settings, st: d.Store, log: logger}
	empty := cfg.Channels
	rt.channels.Store(&empty)
	rt.refresh(context.Background())
	ec := cfg.Enrich
	ec.Policy = rt.Policy.Get
	ec.AlertChannels = func(event string) []string { return rt.channels.Load().For(event) }
	svc, err := enrich.New(ec, d.Store, logger)
	if err != nil {
		return nil, err
	}
	rt.Service = svc
	return rt, nil
}

// refresh recomputes the policy and channels from the settings. The
// policy is, from weakest to strongest: the defaults, SECURITY_POLICY_FILE,
// the Strapi-style flat settings fields, and the settings document's
// "security" object (when the settings carry one).
func (rt *Runtime) refresh(ctx context.Context) {
	if rt.settings == nil {
		return
	}
	s := rt.settings(ctx)
	var problems []string
	p, err := policy.FromAppSettings(s, rt.cfg.BasePolicy)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if rt.st != nil {
		if raw, err := rt.st.GetSettings(ctx); err != nil {
			problems = append(problems, fmt.Sprintf("read settings: %v", err))
		} else if sec, err := policy.SecurityDocument(raw); err != nil {
			problems = append(problems, err.Error())
		} else if sec != nil {
			if over, err := policy.ParseOver(p, sec); err != nil {
				problems = append(problems, err.Error())
			} else {
				p = over
			}
		}
	}
	if !reflect.DeepEqual(p, rt.Policy.Get()) {
		if err := rt.Policy.Set(p); err != nil {
			problems = append(problems, err.Error())
		}
	}
	fromSettings, err := alert.ChannelsFromSettings(s)
	if err != nil {
		problems = append(problems, err.Error())
	}
	ch := rt.cfg.Channels.Override(fromSettings)
	if !reflect.DeepEqual(ch, *rt.channels.Load()) {
		rt.channels.Store(&ch)
		rt.log.Info("alert channels", "channels", ch.Names())
	}
	msg := strings.Join(problems, "; ")
	rt.mu.Lock()
	changed := msg != rt.lastErr
	rt.lastErr = msg
	rt.mu.Unlock()
	if changed && msg != "" {
		rt.log.Warn("settings for enrichment or alerts partly unusable; the rest applies", "problems", msg)
	}
}

// Senders builds (and caches per channel configuration) the alert senders.
func (rt *Runtime) Senders() map[string]alert.Sender {
	cur := rt.channels.Load()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.sendersFor == cur {
		return rt.senders
	}
	// A channel that cannot be built is left out (its alerts fail as "not
	// configured" and dead-letter); the others deliver.
	s, err := cur.Build()
	if err != nil {
		rt.log.Warn("alert channels partly unusable; the others deliver", "error", err, "usable", slices.Sorted(maps.Keys(s)))
	}
	if e, ok := s[alert.ChannelEmail].(*alert.Email); ok {
		e.OnTemplateError = func(event string, err error) {
			rt.log.Warn("custom email template failed; the built-in mail was sent", "event", event, "error", err)
		}
	}
	rt.sendersFor, rt.senders = cur, s
	return s
}

// Run runs the GeoIP/list reloaders, the settings refresher and the alert
// dispatcher until ctx is done.
func (rt *Runtime) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { rt.Service.Run(ctx) })
	wg.Go(func() { periodic.Run(ctx, rt.cfg.PolicyRefresh, rt.refresh) })
	wg.Go(func() {
		alert.NewDispatcher(rt.st, alert.DispatcherConfig{
			Senders: rt.Senders, MaxAttempts: rt.cfg.AlertAttempts,
		}, rt.log).Run(ctx)
	})
	wg.Wait()
}

// Mounts are the admin outbox routes (alert.AdminHandlers) for the
// service.Hooks Mounts hook; merge them with the dashboard's.
func Mounts(_ context.Context, d service.Deps) (map[string]http.Handler, error) {
	return alert.AdminHandlers(d.Store, d.Logger), nil
}

// MountsFunc is the shape of the service.Hooks Mounts hook.
type MountsFunc = func(ctx context.Context, d service.Deps) (map[string]http.Handler, error)

// CombineMounts merges several Mounts hooks (e.g. Mounts and the
// dashboard's); a pattern claimed twice is an error.
func CombineMounts(fns ...MountsFunc) MountsFunc {
	return func(ctx context.Context, d service.Deps) (map[string]http.Handler, error) {
		out := map[string]http.Handler{}
		for _, fn := range fns {
			if fn == nil {
				continue
			}
			m, err := fn(ctx, d)
			if err != nil {
				return nil, err
			}
			for p, h := range m {
				if _, dup := out[p]; dup {
					return nil, fmt.Errorf("route %q mounted twice", p)
				}
				out[p] = h
			}
		}
		return out, nil
	}
}
