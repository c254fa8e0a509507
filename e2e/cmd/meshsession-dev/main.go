// Command meshsession-dev runs the whole system on one machine (`make run`):
// sessionsvc (in process, SQLite by default), the demo app and the dev proxy
// hosting plugin.wasm, all configured from the same envoy.yaml Envoy uses.
//
//	meshsession-dev [flags]          sessionsvc + demo app + dev proxy
//	meshsession-dev proxy [flags]    only the dev proxy (the app and
//	                                 sessionsvc run elsewhere: -app-addr,
//	                                 -sessionsvc-addr)
//
// The compose hostnames of envoy.yaml's clusters ("demoapp", "sessionsvc")
// are mapped to -app-addr and -sessionsvc-addr. sessionsvc gets its
// MESHSESSION_INTERNAL_KEY and JWT_SECRET from the plugin configuration in
// envoy.yaml (internal_key, verify.secret) so the three always agree; the
// demo app signs with the same secret. Ctrl-C stops everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshsession/meshsession/e2e/demoapp"
	"github.com/meshsession/meshsession/e2e/devproxy"
	"github.com/meshsession/meshsession/e2e/envoyconfig"
	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/sessionsvc/dashboard"
	"github.com/meshsession/meshsession/sessionsvc/enrich/wire"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "meshsession-dev:", err)
		os.Exit(1)
	}
}

type options struct {
	proxyOnly      bool
	envoyConfig    string
	wasm           string
	workers        int
	listen         string
	admin          string
	appAddr        string
	sessionsvcAddr string
	databaseURL    string
	logLevel       slog.Level
	pluginLogLevel string
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	name := "meshsession-dev"
	if len(args) > 0 && args[0] == "proxy" {
		o.proxyOnly, args, name = true, args[1:], "meshsession-dev proxy"
	}
	def := func(env, fallback string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return fallback
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.envoyConfig, "envoy-config", def("ENVOY_CONFIG", "envoy.yaml"), "Envoy bootstrap to read (ENVOY_CONFIG)")
	fs.StringVar(&o.wasm, "wasm", def("MESHSESSION_PLUGIN_WASM", "plugin.wasm"), "the plugin module, built by `make plugin` (MESHSESSION_PLUGIN_WASM)")
	fs.IntVar(&o.workers, "workers", 2, "worker VMs (Envoy's --concurrency)")
	fs.StringVar(&o.listen, "listen", "", "proxy listener (default: envoy.yaml's listener address)")
	fs.StringVar(&o.admin, "admin", "", `proxy admin listener (default: envoy.yaml's admin address; "off" disables)`)
	fs.StringVar(&o.appAddr, "app-addr", def("DEMOAPP_ADDR", "127.0.0.1:3000"), "demo app address; envoy.yaml's host \"demoapp\" maps to it (DEMOAPP_ADDR)")
	fs.StringVar(&o.sessionsvcAddr, "sessionsvc-addr", "127.0.0.1:8081", "sessionsvc address; envoy.yaml's host \"sessionsvc\" maps to it")
	fs.StringVar(&o.databaseURL, "database-url", def("DATABASE_URL", store.DefaultDatabaseURL), "sessionsvc database (DATABASE_URL)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.StringVar(&o.pluginLogLevel, "plugin-log-level", "info", "lowest filter log level shown: trace, debug, info, warn, error, critical")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (subcommand: proxy)", fs.Args())
	}
	if o.workers < 1 || o.workers > 64 {
		return o, fmt.Errorf("-workers: want 1..64, got %d", o.workers)
	}
	return o, nil
}

var pluginLevels = map[string]host.LogLevel{
	"trace": host.LogTrace, "debug": host.LogDebug, "info": host.LogInfo,
	"warn": host.LogWarn, "error": host.LogError, "critical": host.LogCritical,
}

// Ready describes the running system (for the banner and tests).
type Ready struct {
	Proxy, ProxyAdmin, App, Sessionsvc string // host:port; empty when not run
	AdminToken                         string
	DatabaseURL                        string
	Workers                            int
}

// run starts everything and blocks until ctx ends (or a component fails),
// then stops everything. ready, when set, is called once all listen.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(Ready)) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	lvl, ok := pluginLevels[strings.ToLower(o.pluginLogLevel)]
	if !ok {
		return fmt.Errorf("-plugin-log-level: unknown level %q", o.pluginLogLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))

	env, err := envoyconfig.Load(o.envoyConfig)
	if err != nil {
		return err
	}
	plugin, err := config.Parse([]byte(env.Wasm.Configuration))
	if err != nil {
		return fmt.Errorf("%s: wasm filter configuration: %w", o.envoyConfig, err)
	}
	secret := demoapp.DefaultSecret
	if plugin.Verify.Mode == config.ModeHS256 && plugin.Verify.Secret != "" {
		secret = plugin.Verify.Secret
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		firstEr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstEr == nil && err != nil {
			firstEr = err
		}
		errMu.Unlock()
		cancel()
	}
	// closers run (in reverse) when startup fails half-way.
	var closers []func()
	abort := func(err error) error {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		return err
	}
	r := Ready{Workers: o.workers}
	appAddr, svcAddr := o.appAddr, o.sessionsvcAddr

	var svc *service.Service
	var svcLn, appLn net.Listener
	var appSrv *http.Server
	if !o.proxyOnly {
		if svcLn, err = net.Listen("tcp", o.sessionsvcAddr); err != nil {
			return fmt.Errorf("sessionsvc: listen on %s (-sessionsvc-addr): %w", o.sessionsvcAddr, err)
		}
		closers = append(closers, func() { _ = svcLn.Close() })
		if appLn, err = net.Listen("tcp", o.appAddr); err != nil {
			return abort(fmt.Errorf("demo app: listen on %s (-app-addr): %w", o.appAddr, err))
		}
		closers = append(closers, func() { _ = appLn.Close() })
		svcAddr, appAddr = svcLn.Addr().String(), appLn.Addr().String()

		overlay := map[string]string{
			"DATABASE_URL":             o.databaseURL,
			"JWT_SECRET":               secret,
			"MESHSESSION_INTERNAL_KEY": plugin.InternalKey,
			"SESSIONSVC_ADDR":          svcAddr,
		}
		if getenv("ADMIN_TOKEN") == "" { // keep one development token across restarts (devtoken.go)
			tok, err := devAdminToken(o.databaseURL)
			if err != nil {
				return abort(err)
			}
			overlay["ADMIN_TOKEN"] = tok
		}
		svcEnv := func(k string) string {
			if v, ok := overlay[k]; ok {
				return v
			}
			return getenv(k)
		}
		cfg, endIdleSet, _, err := service.ParseConfig("sessionsvc", nil, svcEnv, io.Discard)
		if err != nil {
			return abort(fmt.Errorf("sessionsvc: %w", err))
		}
		// The same parts as the sessionsvc binary: enrichment, alerts, dashboard.
		hooks := wire.Hooks(svcEnv)
		hooks.Mounts = wire.CombineMounts(hooks.Mounts, dashboard.Mounts)
		svc, err = service.New(ctx, cfg, endIdleSet, hooks, log.With("component", "sessionsvc"), io.Discard)
		if err != nil {
			return abort(fmt.Errorf("sessionsvc: %w", err))
		}
		closers = append(closers, func() { _ = svc.Close() })
		r.AdminToken, r.DatabaseURL = svc.AdminToken, o.databaseURL
		app := demoapp.New(demoapp.Config{Secret: secret, SIDClaim: true, Logger: log.With("component", "demoapp")})
		appSrv = &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}

	if _, err := devproxy.RemapHosts(env, map[string]string{"demoapp": appAddr, "sessionsvc": svcAddr}); err != nil {
		return abort(err)
	}
	proxy, err := devproxy.New(ctx, devproxy.Options{
		Envoy: env, ModulePath: o.wasm, Workers: o.workers, Listen: o.listen, Admin: o.admin,
		Logger: log.With("component", "devproxy"), PluginLogLevel: &lvl,
	})
	if err != nil {
		return abort(err)
	}

	if svc != nil {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := svc.Serve(ctx, svcLn); err != nil {
				fail(fmt.Errorf("sessionsvc: %w", err))
			}
			cancel() // one part gone: stop the others
		}()
		go func() {
			defer wg.Done()
			errc := make(chan error, 1)
			go func() { errc <- appSrv.Serve(appLn) }()
			select {
			case err := <-errc:
				fail(fmt.Errorf("demo app: %w", err))
			case <-ctx.Done():
				sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
				defer c()
				_ = appSrv.Shutdown(sctx)
			}
		}()
		r.Sessionsvc, r.App = svcAddr, appAddr
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := proxy.Serve(ctx); err != nil {
			fail(err)
		}
		cancel()
	}()
	r.Proxy = proxy.Addr().String()
	if a := proxy.AdminAddr(); a != nil {
		r.ProxyAdmin = a.String()
	}
	printBanner(stdout, r, o)
	if ready != nil {
		ready(r)
	}
	<-ctx.Done()
	log.Info("stopping")
	wg.Wait()
	log.Info("stopped")
	return firstEr
}

// reachable turns a listen address into one to type in a terminal.
func reachable(addr string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		h = "localhost"
	}
	return net.JoinHostPort(h, port)
}

func printBanner(w io.Writer, r Ready, o options) {
	proxy := "http://" + reachable(r.Proxy)
	fmt.Fprintf(w, "\nmeshsession is running\n")
	fmt.Fprintf(w, "  dev proxy    %s   (%s, %d worker VMs; send your requests here)\n", proxy, o.wasm, r.Workers)
	if r.ProxyAdmin != "" {
		fmt.Fprintf(w, "  proxy admin  http://%s/stats\n", reachable(r.ProxyAdmin))
	}
	if r.App != "" {
		fmt.Fprintf(w, "  demo app     http://%s   (users alice, bob, carol; password <name>-password)\n", reachable(r.App))
	}
	if r.Sessionsvc != "" {
		fmt.Fprintf(w, "  sessionsvc   http://%s   (%s)\n", reachable(r.Sessionsvc), r.DatabaseURL)
		fmt.Fprintf(w, "  dashboard    http://%s/dashboard/   (sign in with the admin token)\n", reachable(r.Sessionsvc))
		fmt.Fprintf(w, "  admin token  %s\n", r.AdminToken)
	}
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  TOKEN=$(curl -s %s/api/auth/local -H 'Content-Type: application/json' -d '{\"identifier\":\"alice\",\"password\":\"alice-password\"}' | sed -E 's/.*\"jwt\":\"([^\"]+)\".*/\\1/')\n", proxy)
	fmt.Fprintf(w, "  curl -si %s/api/articles -H \"Authorization: Bearer $TOKEN\"\n", proxy)
	fmt.Fprintf(w, "  curl -s %s/api/magic-sessionmanager/my-sessions -H \"Authorization: Bearer $TOKEN\"\n", proxy)
	if r.Sessionsvc != "" {
		fmt.Fprintf(w, "Admin (all sessions):\n  curl -s http://%s/magic-sessionmanager/sessions -H 'Authorization: Bearer %s'\n", reachable(r.Sessionsvc), r.AdminToken)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n\n")
}
