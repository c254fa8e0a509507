package envoyconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Well-known filter names.
const (
	FilterHCM    = "envoy.filters.network.http_connection_manager"
	FilterWasm   = "envoy.filters.http.wasm"
	FilterRouter = "envoy.filters.http.router"
)

// Failure policies of the wasm filter (envoy.extensions.wasm.v3.FailurePolicy).
const (
	FailClosed = "FAIL_CLOSED"
	FailOpen   = "FAIL_OPEN"
	FailReload = "FAIL_RELOAD"
)

// Envoy's defaults for unset timeouts.
const (
	DefaultRouteTimeout   = 15 * time.Second
	DefaultConnectTimeout = 5 * time.Second
)

// DefaultPluginCluster is the plugin configuration's default "cluster".
const DefaultPluginCluster = "sessionsvc"

// Address is a socket address.
type Address struct {
	Host string
	Port uint32
}

// String returns host:port.
func (a Address) String() string {
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
}

// Listener is the (single) listener the proxy serves, with the settings of
// its HTTP connection manager that change what reaches the filter.
type Listener struct {
	Name    string
	Address Address
	// StatPrefix is the HCM's stat_prefix.
	StatPrefix string
	// UseRemoteAddress: the HCM appends the peer address to
	// x-forwarded-for (edge proxy) instead of trusting the client's.
	UseRemoteAddress bool
	// XFFNumTrustedHops is the HCM's xff_num_trusted_hops.
	XFFNumTrustedHops uint32
	// Paths is how the HCM normalises :path before any filter sees it.
	Paths PathNormalization
}

// PathNormalization is the HCM's path handling (normalize_path,
// merge_slashes, path_with_escaped_slashes_action).
type PathNormalization struct {
	// Normalize: RFC 3986 normalisation (dot segments, backslashes,
	// percent-encoding), Envoy's PathUtil::canonicalPath.
	Normalize bool
	// MergeSlashes: "//" becomes "/" (PathUtil::mergeSlashes).
	MergeSlashes bool
	// EscapedSlashes is path_with_escaped_slashes_action: one of
	// EscapedSlashesKeep, EscapedSlashesReject, EscapedSlashesRedirect,
	// EscapedSlashesForward (IMPLEMENTATION_SPECIFIC_DEFAULT resolves to
	// KEEP_UNCHANGED, Envoy's default).
	EscapedSlashes string
}

// Values of PathNormalization.EscapedSlashes (the enum's names).
const (
	EscapedSlashesKeep     = "KEEP_UNCHANGED"
	EscapedSlashesReject   = "REJECT_REQUEST"
	EscapedSlashesRedirect = "UNESCAPE_AND_REDIRECT"
	EscapedSlashesForward  = "UNESCAPE_AND_FORWARD"
)

// Route is one route of the listener's route table, in order.
type Route struct {
	// Exactly one of Prefix (match.prefix) and Path (match.path, exact) is set.
	Prefix string
	Path   string
	// Cluster is the upstream cluster (route.cluster).
	Cluster string
	// Timeout is route.timeout (DefaultRouteTimeout when unset; 0 disables it).
	Timeout time.Duration
	// PrefixRewrite is route.prefix_rewrite ("" = none).
	PrefixRewrite string
}

// Matches reports whether a request path matches the route (Envoy's
// case-sensitive prefix or exact path match; the query string is not part
// of path).
func (r Route) Matches(path string) bool {
	if r.Path != "" {
		return path == r.Path
	}
	return strings.HasPrefix(path, r.Prefix)
}

// Cluster is a static or DNS cluster.
type Cluster struct {
	Name string
	// Address is the first endpoint; Endpoints lists them all.
	Address   Address
	Endpoints []Address
	// ConnectTimeout is connect_timeout (DefaultConnectTimeout when unset).
	ConnectTimeout time.Duration
}

// Wasm holds the meshsession wasm filter's settings.
type Wasm struct {
	FilterName string // the http filter's name (envoy.filters.http.wasm)
	Name       string // config.name
	RootID     string // config.root_id
	VMID       string // config.vm_config.vm_id
	Runtime    string // config.vm_config.runtime
	Filename   string // config.vm_config.code.local.filename
	// Configuration is the plugin configuration JSON (the StringValue in
	// config.configuration), passed verbatim to proxy_on_configure.
	Configuration string
	// FailurePolicy is FailClosed, FailOpen or FailReload (the effective
	// policy: UNSPECIFIED resolves to FAIL_CLOSED, or FAIL_OPEN with the
	// deprecated fail_open flag).
	FailurePolicy string
	// AllowOnHeadersStopIteration is config.allow_on_headers_stop_iteration
	// (Envoy 1.35 and later): a paused headers callback stops only the
	// headers, and body callbacks still reach the filter. Default false:
	// the pause stops everything until the filter resumes the stream.
	AllowOnHeadersStopIteration bool
	// PluginCluster is the configuration's "cluster" (DefaultPluginCluster
	// when absent); Load checks it names a defined cluster.
	PluginCluster string
}

// Config is what the dev proxy needs from envoy.yaml.
type Config struct {
	// Bootstrap is the full, validated bootstrap.
	Bootstrap *bootstrapv3.Bootstrap
	// Admin is the admin interface address (nil when none is configured).
	Admin    *Address
	Listener Listener
	// Routes are the route table of the listener's (single) virtual host, in
	// match order.
	Routes []Route
	// Clusters by name.
	Clusters map[string]Cluster
	// HTTPFilters are the http filter names in order (the router last).
	HTTPFilters []string
	Wasm        Wasm
}

// Load reads, validates and extracts the bootstrap at path. Errors start
// with the file's base name.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load envoy config: %w", err)
	}
	return Parse(filepath.Base(path), data)
}

// Parse validates data against Envoy's schema (see Decode) and extracts the
// Config, checking what Envoy would check at startup (routes and the plugin
// name defined clusters, the router is the last http filter) and what the
// dev proxy requires (one listener with an inline route table and one wasm
// filter loading a local file). name prefixes error messages.
func Parse(name string, data []byte) (*Config, error) {
	b, err := Decode(name, data)
	if err != nil {
		return nil, err
	}
	c, err := extract(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Route returns the first route matching a request path, as Envoy does.
func (c *Config) Route(path string) (Route, bool) {
	for _, r := range c.Routes {
		if r.Matches(path) {
			return r, true
		}
	}
	return Route{}, false
}

// SetClusterAddress points cluster name at hostport (e.g. the dev proxy maps
// the compose hostname "demoapp" to "127.0.0.1:3000").
func (c *Config) SetClusterAddress(name, hostport string) error {
	cl, ok := c.Clusters[name]
	if !ok {
		return fmt.Errorf("set cluster address: no cluster %q", name)
	}
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("set cluster address %q: %w", name, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("set cluster address %q: invalid port %q", name, portStr)
	}
	cl.Address = Address{Host: host, Port: uint32(port)}
	cl.Endpoints = []Address{cl.Address}
	c.Clusters[name] = cl
	return nil
}

func extract(b *bootstrapv3.Bootstrap) (*Config, error) {
	c := &Config{Bootstrap: b, Clusters: map[string]Cluster{}}
	if sa := b.GetAdmin().GetAddress().GetSocketAddress(); sa != nil {
		c.Admin = &Address{Host: sa.GetAddress(), Port: sa.GetPortValue()}
	}
	sr := b.GetStaticResources()
	if sr == nil {
		return nil, errors.New("static_resources: missing")
	}
	for i, cl := range sr.GetClusters() {
		ec, err := extractCluster(cl, fmt.Sprintf("static_resources.clusters[%d]", i))
		if err != nil {
			return nil, err
		}
		if _, dup := c.Clusters[ec.Name]; dup {
			return nil, fmt.Errorf("static_resources.clusters[%d]: duplicate cluster name %q", i, ec.Name)
		}
		c.Clusters[ec.Name] = ec
	}

	switch n := len(sr.GetListeners()); {
	case n == 0:
		return nil, errors.New("static_resources.listeners: no listener defined")
	case n > 1:
		return nil, fmt.Errorf("static_resources.listeners: %d listeners defined, the dev proxy serves exactly one", n)
	}
	const lp = "static_resources.listeners[0]"
	l := sr.GetListeners()[0]
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("%s.address: want a socket_address", lp)
	}
	if _, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue); !ok {
		return nil, fmt.Errorf("%s.address.socket_address: want a port_value", lp)
	}
	c.Listener = Listener{Name: l.GetName(), Address: Address{Host: sa.GetAddress(), Port: sa.GetPortValue()}}

	hcm, hp, err := findHCM(l.GetFilterChains(), lp)
	if err != nil {
		return nil, err
	}
	c.Listener.StatPrefix = hcm.GetStatPrefix()
	c.Listener.UseRemoteAddress = hcm.GetUseRemoteAddress().GetValue()
	c.Listener.XFFNumTrustedHops = hcm.GetXffNumTrustedHops()
	c.Listener.Paths = PathNormalization{
		Normalize:      hcm.GetNormalizePath().GetValue(),
		MergeSlashes:   hcm.GetMergeSlashes(),
		EscapedSlashes: hcm.GetPathWithEscapedSlashesAction().String(),
	}
	if hcm.GetPathWithEscapedSlashesAction() == hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT {
		c.Listener.Paths.EscapedSlashes = EscapedSlashesKeep
	}
	if err := c.extractRoutes(hcm, hp); err != nil {
		return nil, err
	}
	if err := c.extractFilters(hcm, hp, lp); err != nil {
		return nil, err
	}
	return c, nil
}

func extractCluster(cl *clusterv3.Cluster, p string) (Cluster, error) {
	ec := Cluster{Name: cl.GetName(), ConnectTimeout: DefaultConnectTimeout}
	if cl.GetConnectTimeout() != nil {
		ec.ConnectTimeout = cl.GetConnectTimeout().AsDuration()
	}
	if t := cl.GetType(); t != clusterv3.Cluster_STATIC && t != clusterv3.Cluster_STRICT_DNS && t != clusterv3.Cluster_LOGICAL_DNS {
		return ec, fmt.Errorf("%s (%s): type %s is not supported by the dev proxy (use STATIC, STRICT_DNS or LOGICAL_DNS)", p, ec.Name, t)
	}
	for i, lle := range cl.GetLoadAssignment().GetEndpoints() {
		for j, lbe := range lle.GetLbEndpoints() {
			sa := lbe.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				return ec, fmt.Errorf("%s.load_assignment.endpoints[%d].lb_endpoints[%d]: want endpoint.address.socket_address", p, i, j)
			}
			if _, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue); !ok {
				return ec, fmt.Errorf("%s.load_assignment.endpoints[%d].lb_endpoints[%d]: want a port_value", p, i, j)
			}
			ec.Endpoints = append(ec.Endpoints, Address{Host: sa.GetAddress(), Port: sa.GetPortValue()})
		}
	}
	if len(ec.Endpoints) == 0 {
		return ec, fmt.Errorf("%s (%s): load_assignment has no endpoint", p, ec.Name)
	}
	ec.Address = ec.Endpoints[0]
	return ec, nil
}

func findHCM(chains []*listenerv3.FilterChain, lp string) (*hcmv3.HttpConnectionManager, string, error) {
	if len(chains) != 1 {
		return nil, "", fmt.Errorf("%s.filter_chains: %d filter chains, the dev proxy supports exactly one", lp, len(chains))
	}
	fp := lp + ".filter_chains[0]"
	for i, f := range chains[0].GetFilters() {
		p := fmt.Sprintf("%s.filters[%d]", fp, i)
		if _, isHCM := f.GetConfigType().(*listenerv3.Filter_TypedConfig); !isHCM || f.GetTypedConfig() == nil {
			continue
		}
		if f.GetTypedConfig().MessageName() != "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" {
			continue
		}
		hcm, err := unpack[*hcmv3.HttpConnectionManager](f.GetTypedConfig(), p+".typed_config")
		if err != nil {
			return nil, "", err
		}
		return hcm, p + ".typed_config", nil
	}
	return nil, "", fmt.Errorf("%s.filters: no %s filter", fp, FilterHCM)
}

func (c *Config) extractRoutes(hcm *hcmv3.HttpConnectionManager, hp string) error {
	rc := hcm.GetRouteConfig()
	if rc == nil {
		return fmt.Errorf("%s: want an inline route_config (rds and scoped routes are not supported by the dev proxy)", hp)
	}
	rp := hp + ".route_config"
	if n := len(rc.GetVirtualHosts()); n != 1 {
		return fmt.Errorf("%s.virtual_hosts: %d virtual hosts, the dev proxy supports exactly one", rp, n)
	}
	vp := rp + ".virtual_hosts[0]"
	for i, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		p := fmt.Sprintf("%s.routes[%d]", vp, i)
		var er Route
		switch m := r.GetMatch().GetPathSpecifier().(type) {
		case *routev3.RouteMatch_Prefix:
			er.Prefix = m.Prefix
		case *routev3.RouteMatch_Path:
			er.Path = m.Path
		default:
			return fmt.Errorf("%s.match: only prefix and path matches are supported by the dev proxy", p)
		}
		if r.GetMatch().GetCaseSensitive() != nil && !r.GetMatch().GetCaseSensitive().GetValue() {
			return fmt.Errorf("%s.match.case_sensitive: false is not supported by the dev proxy", p)
		}
		if len(r.GetMatch().GetHeaders()) > 0 || len(r.GetMatch().GetQueryParameters()) > 0 {
			return fmt.Errorf("%s.match: header and query parameter matches are not supported by the dev proxy", p)
		}
		ra, ok := r.GetAction().(*routev3.Route_Route)
		if !ok {
			return fmt.Errorf("%s: only route actions (route: {cluster: ...}) are supported by the dev proxy", p)
		}
		cs, ok := ra.Route.GetClusterSpecifier().(*routev3.RouteAction_Cluster)
		if !ok {
			return fmt.Errorf("%s.route: want a cluster (cluster_header, weighted_clusters are not supported by the dev proxy)", p)
		}
		er.Cluster = cs.Cluster
		if _, ok := c.Clusters[er.Cluster]; !ok {
			return fmt.Errorf("%s.route.cluster: cluster %q is not defined in static_resources.clusters", p, er.Cluster)
		}
		er.Timeout = DefaultRouteTimeout
		if ra.Route.GetTimeout() != nil {
			er.Timeout = ra.Route.GetTimeout().AsDuration()
		}
		er.PrefixRewrite = ra.Route.GetPrefixRewrite()
		c.Routes = append(c.Routes, er)
	}
	if len(c.Routes) == 0 {
		return fmt.Errorf("%s.routes: no route defined", vp)
	}
	return nil
}

func (c *Config) extractFilters(hcm *hcmv3.HttpConnectionManager, hp, lp string) error {
	filters := hcm.GetHttpFilters()
	wasmAt := -1
	for i, f := range filters {
		c.HTTPFilters = append(c.HTTPFilters, f.GetName())
		tc := f.GetTypedConfig()
		if tc == nil || tc.MessageName() != "envoy.extensions.filters.http.wasm.v3.Wasm" {
			continue
		}
		if wasmAt >= 0 {
			return fmt.Errorf("%s.http_filters[%d]: a second %s filter; the dev proxy hosts exactly one", hp, i, FilterWasm)
		}
		wasmAt = i
		w, err := extractWasm(tc, f.GetName(), fmt.Sprintf("%s.http_filters[%d].typed_config", hp, i))
		if err != nil {
			return err
		}
		c.Wasm = w
	}
	if len(filters) == 0 {
		return fmt.Errorf("%s.http_filters: none defined (want %s, then %s)", hp, FilterWasm, FilterRouter)
	}
	last := filters[len(filters)-1]
	if last.GetTypedConfig() == nil || last.GetTypedConfig().MessageName() != routerMessage {
		return fmt.Errorf("%s.http_filters[%d]: the last http filter must be %s, got %q", hp, len(filters)-1, FilterRouter, last.GetName())
	}
	if wasmAt < 0 {
		return fmt.Errorf("%s: no %s filter", lp, FilterWasm)
	}
	if _, ok := c.Clusters[c.Wasm.PluginCluster]; !ok {
		return fmt.Errorf("%s.http_filters[%d].typed_config.config.configuration: plugin \"cluster\" %q is not defined in static_resources.clusters",
			hp, wasmAt, c.Wasm.PluginCluster)
	}
	return nil
}

var routerMessage = (&routerv3.Router{}).ProtoReflect().Descriptor().FullName()

func extractWasm(tc *anypb.Any, filterName, p string) (Wasm, error) {
	wf, err := unpack[*wasmfilterv3.Wasm](tc, p)
	if err != nil {
		return Wasm{}, err
	}
	pc := wf.GetConfig()
	if pc == nil {
		return Wasm{}, fmt.Errorf("%s.config: missing", p)
	}
	p += ".config"
	w := Wasm{FilterName: filterName, Name: pc.GetName(), RootID: pc.GetRootId()}
	vm := pc.GetVmConfig()
	if vm == nil {
		return w, fmt.Errorf("%s.vm_config: missing", p)
	}
	w.VMID, w.Runtime = vm.GetVmId(), vm.GetRuntime()
	local := vm.GetCode().GetLocal()
	if local == nil {
		return w, fmt.Errorf("%s.vm_config.code: want local (remote code is not supported by the dev proxy)", p)
	}
	w.Filename = local.GetFilename()
	if w.Filename == "" {
		return w, fmt.Errorf("%s.vm_config.code.local: want filename (inline code is not supported by the dev proxy)", p)
	}

	w.AllowOnHeadersStopIteration = pc.GetAllowOnHeadersStopIteration().GetValue()
	switch pc.GetFailurePolicy() {
	case wasmv3.FailurePolicy_FAIL_CLOSED:
		w.FailurePolicy = FailClosed
	case wasmv3.FailurePolicy_FAIL_OPEN:
		w.FailurePolicy = FailOpen
	case wasmv3.FailurePolicy_FAIL_RELOAD:
		w.FailurePolicy = FailReload
	case wasmv3.FailurePolicy_UNSPECIFIED:
		w.FailurePolicy = FailClosed
		//lint:ignore SA1019 honour the deprecated fail_open as Envoy does
		if pc.GetFailOpen() {
			w.FailurePolicy = FailOpen
		}
	default:
		return w, fmt.Errorf("%s.failure_policy: unknown value %d", p, pc.GetFailurePolicy())
	}

	cfg := pc.GetConfiguration()
	if cfg == nil {
		return w, fmt.Errorf("%s.configuration: missing (want a google.protobuf.StringValue holding the plugin JSON)", p)
	}
	sv, err := unpack[*wrapperspb.StringValue](cfg, p+".configuration")
	if err != nil {
		return w, err
	}
	w.Configuration = sv.GetValue()
	var plugin map[string]json.RawMessage
	if err := json.Unmarshal([]byte(w.Configuration), &plugin); err != nil {
		return w, fmt.Errorf("%s.configuration: plugin configuration is not a JSON object: %w", p, err)
	}
	w.PluginCluster = DefaultPluginCluster
	if raw, ok := plugin["cluster"]; ok {
		if err := json.Unmarshal(raw, &w.PluginCluster); err != nil {
			return w, fmt.Errorf("%s.configuration: plugin field \"cluster\": want a string", p)
		}
	}
	return w, nil
}
