// Package devproxy is meshsession's development proxy: a real HTTP reverse
// proxy that hosts plugin.wasm on the project's wazero proxy-wasm host
// (e2e/host) the way Envoy hosts it, configured from the same envoy.yaml
// Envoy reads (listener, routes, clusters, the wasm filter's configuration,
// vm_id, root_id and failure_policy; see e2e/envoyconfig). It is the one
// place that runs HTTP requests through e2e/host: `make run`, the e2e tests
// and the benchmarks all go through it.
//
// For each downstream request the proxy opens a stream on the next worker
// VM (round-robin), gives the filter the request headers (with :method,
// :path, :authority and :scheme) and the whole request body (bounded),
// waits while the filter holds the request (a callout in flight), forwards
// the possibly modified request to the cluster of the first matching route,
// and runs the upstream's response through the filter the same way. A local
// response of the filter replaces the request or the response. The
// filter's failure_policy applies when its VM has failed: FAIL_CLOSED (and
// FAIL_RELOAD, for the failing request) answer 503, FAIL_OPEN passes the
// request through without the filter.
//
// It differs from Envoy in what it does not do: bodies are buffered (not
// streamed), there is one listener and one virtual host, no TLS, no
// HTTP/2 upstreams, no retries, no load balancing beyond the first
// endpoint of a cluster.
package devproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
	"github.com/meshsession/meshsession/e2e/host"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultWorkers         = 2
	DefaultMaxRequestBody  = 8 << 20
	DefaultMaxResponseBody = 64 << 20
	DefaultStreamTimeout   = 30 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// WorkerHeader pins a request to one worker VM ("0", "1", …) when
// Options.AllowWorkerPin is set (tests: "every worker refuses the token").
// The proxy always removes it before the filter sees the request.
const WorkerHeader = "x-meshsession-worker"

// AdminOff disables the admin listener when given as Options.Admin.
const AdminOff = "off"

// Options configure a Proxy.
type Options struct {
	// Envoy is the loaded envoy.yaml (clusters already pointed at reachable
	// addresses, see RemapHosts). Required.
	Envoy *envoyconfig.Config
	// Module is the plugin's Wasm binary; when nil it is read from
	// ModulePath (see LoadModule).
	Module     []byte
	ModulePath string
	// Workers is the number of worker VMs (default 2), Envoy's --concurrency.
	Workers int
	// Listen overrides the listener address of envoy.yaml (e.g.
	// "127.0.0.1:0" in tests).
	Listen string
	// Admin overrides the admin address of envoy.yaml; AdminOff disables it.
	// Without an admin address in either place there is no admin listener.
	Admin string
	// Logger receives one line per request and the filter's logs (default:
	// discard).
	Logger *slog.Logger
	// PluginLogLevel is the lowest filter log level kept (default info).
	PluginLogLevel *host.LogLevel
	// CompilationCache shares compiled code between proxies (tests).
	CompilationCache wazero.CompilationCache
	// AllowWorkerPin honours WorkerHeader. Tests only.
	AllowWorkerPin bool
	// MaxRequestBody and MaxResponseBody bound buffered bodies (defaults
	// 8 MiB and 64 MiB): a larger request gets 413, a larger response 500.
	MaxRequestBody, MaxResponseBody int64
	// StreamTimeout bounds how long the filter may hold a stream (default
	// 30 s); past it the request gets 504.
	StreamTimeout time.Duration
	// ShutdownTimeout bounds the graceful drain in Serve (default 10 s).
	ShutdownTimeout time.Duration
}

// Proxy is a running dev proxy: its listeners are bound by New; Serve
// serves them.
type Proxy struct {
	opts     Options
	env      *envoyconfig.Config
	host     *host.Host
	log      *slog.Logger
	policy   host.FailurePolicy
	clusters map[string]*upstream

	ln, adminLn net.Listener
	srv, admin  *http.Server

	stats     proxyStats
	closeOnce sync.Once
	closeErr  error
}

// upstream is a cluster the proxy forwards to.
type upstream struct {
	name      string
	base      *url.URL // nil: no endpoint (no healthy upstream)
	transport *http.Transport
}

type proxyStats struct {
	requests, local, upstreamErrors, vmFailures, failOpen atomic.Int64
	status                                                [6]atomic.Int64 // by class: 1xx..5xx
}

// New validates opts, binds the listener (and the admin listener), loads
// the module and starts the worker VMs. Every error names what is wrong:
// the envoy.yaml field, the address in use, the missing plugin.wasm, the
// plugin's refusal of its configuration.
func New(ctx context.Context, opts Options) (*Proxy, error) {
	if opts.Envoy == nil {
		return nil, errors.New("dev proxy: no envoy configuration")
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("dev proxy: workers must be positive, got %d", opts.Workers)
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxRequestBody <= 0 {
		opts.MaxRequestBody = DefaultMaxRequestBody
	}
	if opts.MaxResponseBody <= 0 {
		opts.MaxResponseBody = DefaultMaxResponseBody
	}
	if opts.StreamTimeout <= 0 {
		opts.StreamTimeout = DefaultStreamTimeout
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	env := opts.Envoy
	p := &Proxy{opts: opts, env: env, log: opts.Logger, clusters: map[string]*upstream{}}
	var err error
	if p.policy, err = failurePolicy(env.Wasm.FailurePolicy); err != nil {
		return nil, err
	}
	hostClusters := map[string]host.Cluster{}
	for name, c := range env.Clusters {
		u := &upstream{name: name}
		if c.Address.Host != "" && c.Address.Port != 0 {
			u.base = &url.URL{Scheme: "http", Host: c.Address.String()}
		}
		dialer := &net.Dialer{Timeout: c.ConnectTimeout, KeepAlive: 30 * time.Second}
		u.transport = &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       60 * time.Second,
			DisableCompression:    true, // pass Accept-Encoding and bodies through untouched
			ResponseHeaderTimeout: 0,    // the route timeout applies (request context)
		}
		p.clusters[name] = u
		hc := host.Cluster{ConnectTimeout: c.ConnectTimeout}
		if u.base != nil {
			hc.URL = u.base.String()
		}
		hostClusters[name] = hc
	}

	listen := opts.Listen
	if listen == "" {
		listen = env.Listener.Address.String()
	}
	if p.ln, err = net.Listen("tcp", listen); err != nil {
		return nil, fmt.Errorf("dev proxy: listener %q (static_resources.listeners[0].address): %w", env.Listener.Name, err)
	}
	fail := func(err error) (*Proxy, error) {
		_ = p.ln.Close()
		if p.adminLn != nil {
			_ = p.adminLn.Close()
		}
		p.closeIdle()
		return nil, err
	}
	adminAddr := opts.Admin
	if adminAddr == "" && env.Admin != nil {
		adminAddr = env.Admin.String()
	}
	if adminAddr != "" && adminAddr != AdminOff {
		if p.adminLn, err = net.Listen("tcp", adminAddr); err != nil {
			return fail(fmt.Errorf("dev proxy: admin listener (admin.address): %w", err))
		}
	}

	module := opts.Module
	if module == nil {
		if module, err = LoadModule(opts.ModulePath); err != nil {
			return fail(err)
		}
	}
	lvl := host.LogInfo
	if opts.PluginLogLevel != nil {
		lvl = *opts.PluginLogLevel
	}
	p.host, err = host.New(ctx, host.Config{
		Module:           module,
		Workers:          opts.Workers,
		VMID:             env.Wasm.VMID,
		RootID:           env.Wasm.RootID,
		Name:             env.Wasm.Name,
		PluginConfig:     []byte(env.Wasm.Configuration),
		Clusters:         hostClusters,
		Logger:           p.log.With("filter", env.Wasm.Name),
		LogLevel:         &lvl,
		FailurePolicy:    p.policy,
		CompilationCache: opts.CompilationCache,
		// envoy.yaml's allow_on_headers_stop_iteration (Envoy >= 1.35);
		// without it a paused headers callback stops the body too.
		AllowOnHeadersStopIteration: env.Wasm.AllowOnHeadersStopIteration,
	})
	if err != nil {
		return fail(fmt.Errorf("dev proxy: start plugin (%s filter %q, root_id %q): %w",
			envoyconfig.FilterWasm, env.Wasm.Name, env.Wasm.RootID, err))
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    60 << 10, // Envoy's max_request_headers_kb default
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	if p.adminLn != nil {
		p.admin = &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)}
	}
	return p, nil
}

func failurePolicy(s string) (host.FailurePolicy, error) {
	switch s {
	case "", envoyconfig.FailClosed:
		return host.FailClosed, nil
	case envoyconfig.FailOpen:
		return host.FailOpen, nil
	case envoyconfig.FailReload:
		return host.FailReload, nil
	}
	return 0, fmt.Errorf("dev proxy: wasm config.failure_policy: unknown value %q (want %s, %s or %s)",
		s, envoyconfig.FailClosed, envoyconfig.FailOpen, envoyconfig.FailReload)
}

// LoadModule reads the plugin's Wasm binary, with an error that says how to
// build it when it is missing.
func LoadModule(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("dev proxy: no plugin.wasm path given")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dev proxy: plugin module %s does not exist (build it with `make plugin`)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("dev proxy: read plugin module: %w", err)
	}
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, fmt.Errorf("dev proxy: %s is not a WebAssembly module (rebuild it with `make plugin`)", path)
	}
	return b, nil
}

// RemapHosts points every cluster endpoint whose host is a key of hosts at
// the key's value (host:port): the dev proxy's way to reach the docker
// compose service names of envoy.yaml ("demoapp", "sessionsvc") on
// 127.0.0.1. It returns the names of the clusters it changed.
func RemapHosts(cfg *envoyconfig.Config, hosts map[string]string) ([]string, error) {
	var changed []string
	for name, c := range cfg.Clusters {
		to, ok := hosts[c.Address.Host]
		if !ok {
			continue
		}
		if err := cfg.SetClusterAddress(name, to); err != nil {
			return changed, fmt.Errorf("remap cluster %q (%s) to %s: %w", name, c.Address.Host, to, err)
		}
		changed = append(changed, name)
	}
	return changed, nil
}

// Addr is the listener's address.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// AdminAddr is the admin listener's address (nil when disabled).
func (p *Proxy) AdminAddr() net.Addr {
	if p.adminLn == nil {
		return nil
	}
	return p.adminLn.Addr()
}

// Host is the proxy-wasm host running the plugin.
func (p *Proxy) Host() *host.Host { return p.host }

// Workers is the number of worker VMs.
func (p *Proxy) Workers() int { return p.host.Workers() }

// Serve serves the listener (and the admin listener) until ctx ends, then
// shuts down: no new connections, in-flight requests drained (bounded by
// ShutdownTimeout), then the VMs are stopped. It returns an error if a
// listener fails.
func (p *Proxy) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- p.srv.Serve(p.ln) }()
	if p.admin != nil {
		go func() { errc <- p.admin.Serve(p.adminLn) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("dev proxy: serve: %w", err)
		}
	}
	if err := p.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// Close shuts the proxy down (gracefully, bounded by ShutdownTimeout) and
// stops the VMs. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
		defer cancel()
		if err := p.srv.Shutdown(sctx); err != nil {
			p.log.Warn("dev proxy: shutdown did not drain in time", "err", err)
			_ = p.srv.Close()
		}
		_ = p.ln.Close() // when Serve never ran
		if p.admin != nil {
			_ = p.admin.Shutdown(sctx)
		}
		if p.adminLn != nil {
			_ = p.adminLn.Close()
		}
		if err := p.host.Close(context.Background()); err != nil {
			p.closeErr = fmt.Errorf("dev proxy: stop plugin: %w", err)
		}
		p.closeIdle()
	})
	return p.closeErr
}

func (p *Proxy) closeIdle() {
	for _, u := range p.clusters {
		u.transport.CloseIdleConnections()
	}
}

// drain reads at most limit bytes of r; tooLarge is set when there was more.
func drain(r io.Reader, limit int64) (body []byte, tooLarge bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(body)) > limit {
		return nil, true, err
	}
	return body, false, err
}

// hopByHop are the connection-level headers a proxy does not forward.
var hopByHop = map[string]bool{
	"connection": true, "proxy-connection": true, "keep-alive": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true, "proxy-authenticate": true, "proxy-authorization": true,
}

// connectionListed returns the header names a Connection header lists
// (also hop-by-hop).
func connectionListed(h http.Header) map[string]bool {
	var out map[string]bool
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				if out == nil {
					out = map[string]bool{}
				}
				out[name] = true
			}
		}
	}
	return out
}
