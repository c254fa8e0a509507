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
// demo app signs with the same secret. Every listener binds to loopback
// (127.0.0.1) unless -bind (MESHSESSION_DEV_BIND) or its own address flag
// says otherwise: envoy.yaml's 0.0.0.0 is for containers, and the admin
// interfaces must not reach the network by default. Ctrl-C stops everything
// and exits with status 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

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
	bind           string
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
	fs.StringVar(&o.bind, "bind", def("MESHSESSION_DEV_BIND", "127.0.0.1"), `host every listener binds to unless its own flag is given ("0.0.0.0": all interfaces) (MESHSESSION_DEV_BIND)`)
	fs.StringVar(&o.listen, "listen", "", "proxy listener (default: -bind with envoy.yaml's listener port)")
	fs.StringVar(&o.admin, "admin", "", `proxy admin listener (default: -bind with envoy.yaml's admin port; "off" disables)`)
	fs.StringVar(&o.appAddr, "app-addr", getenv("DEMOAPP_ADDR"), "demo app address; envoy.yaml's host \"demoapp\" maps to it (DEMOAPP_ADDR; default: -bind with port 3000)")
	fs.StringVar(&o.sessionsvcAddr, "sessionsvc-addr", "", "sessionsvc address; envoy.yaml's host \"sessionsvc\" maps to it (default: -bind with port 8081)")
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
	o.bind = strings.Trim(o.bind, "[]")
	if o.bind == "" || strings.ContainsAny(o.bind, "/ ") || (strings.Contains(o.bind, ":") && net.ParseIP(o.bind) == nil) {
		return o, fmt.Errorf("-bind: want a host name or IP address, got %q", o.bind)
	}
	if o.appAddr == "" {
		o.appAddr = net.JoinHostPort(o.bind, "3000")
	}
	if o.sessionsvcAddr == "" {
		o.sessionsvcAddr = net.JoinHostPort(o.bind, "8081")
	}
	return o, nil
}

// proxyAddrs are the dev proxy's listener and admin addresses: the flags
// when given, else -bind with envoy.yaml's ports.
func proxyAddrs(o options, env *envoyconfig.Config) (listen, admin string) {
	listen, admin = o.listen, o.admin
	if listen == "" {
		listen = net.JoinHostPort(o.bind, strconv.Itoa(int(env.Listener.Address.Port)))
	}
	if admin == "" && env.Admin != nil {
		admin = net.JoinHostPort(o.bind, strconv.Itoa(int(env.Admin.Port)))
	}
	return listen, admin
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
	var app *demoapp.App
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
		hooks := wire.Hooks(svcEnv, dashboard.Mounts)
		svc, err = service.New(ctx, cfg, endIdleSet, hooks, log.With("service", "sessionsvc"), io.Discard)
		if err != nil {
			return abort(fmt.Errorf("sessionsvc: %w", err))
		}
		closers = append(closers, func() { _ = svc.Close() })
		r.AdminToken, r.DatabaseURL = svc.AdminToken, o.databaseURL
		app = demoapp.New(demoapp.Config{Secret: secret, SIDClaim: true, Logger: log.With("service", "demoapp")})
	}

	if _, err := devproxy.RemapHosts(env, map[string]string{"demoapp": appAddr, "sessionsvc": svcAddr}); err != nil {
		return abort(err)
	}
	listen, admin := proxyAddrs(o, env)
	proxy, err := devproxy.New(ctx, devproxy.Options{
		Envoy: env, ModulePath: o.wasm, Workers: o.workers, Listen: listen, Admin: admin,
		Logger: log.With("service", "devproxy"), PluginLogLevel: &lvl,
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
			// A shutdown that ran out of time is no failure of a stop.
			if err := app.Serve(ctx, appLn); err != nil && ctx.Err() == nil {
				fail(err)
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
