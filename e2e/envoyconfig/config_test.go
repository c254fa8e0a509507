package envoyconfig_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
)

type bootstrapT = bootstrapv3.Bootstrap

// repoEnvoyYAML is the envoy.yaml at the repository root.
var repoEnvoyYAML = filepath.Join("..", "..", "envoy.yaml")

func readRepoYAML(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(repoEnvoyYAML)
	require.NoError(t, err)
	return string(data)
}

func TestRepoEnvoyYAML(t *testing.T) {
	c, err := envoyconfig.Load(repoEnvoyYAML)
	require.NoError(t, err)

	require.NotNil(t, c.Admin)
	assert.Equal(t, envoyconfig.Address{Host: "0.0.0.0", Port: 9901}, *c.Admin)
	assert.Equal(t, "0.0.0.0:10000", c.Listener.Address.String())
	assert.Equal(t, "ingress", c.Listener.Name)
	assert.Equal(t, "ingress_http", c.Listener.StatPrefix)
	assert.True(t, c.Listener.UseRemoteAddress)
	assert.Zero(t, c.Listener.XFFNumTrustedHops)
	assert.Equal(t, envoyconfig.PathNormalization{Normalize: true, MergeSlashes: true,
		EscapedSlashes: envoyconfig.EscapedSlashesRedirect}, c.Listener.Paths,
		"the HCM normalises paths before the filter (skip_paths and routes see one path)")

	assert.Equal(t, []envoyconfig.Route{
		{Prefix: "/api/magic-sessionmanager/", Cluster: "sessionsvc", Timeout: 5 * time.Second},
		{Prefix: "/", Cluster: "app", Timeout: 15 * time.Second},
	}, c.Routes)
	assert.Equal(t, "demoapp:3000", c.Clusters["app"].Address.String())
	assert.Equal(t, "sessionsvc:8081", c.Clusters["sessionsvc"].Address.String())
	assert.Equal(t, time.Second, c.Clusters["sessionsvc"].ConnectTimeout)
	assert.Equal(t, []string{envoyconfig.FilterWasm, envoyconfig.FilterRouter}, c.HTTPFilters)

	w := c.Wasm
	assert.Equal(t, envoyconfig.FilterWasm, w.FilterName)
	assert.Equal(t, "meshsession", w.VMID)
	assert.Equal(t, "meshsession", w.RootID)
	assert.Equal(t, "meshsession", w.Name)
	assert.Equal(t, "envoy.wasm.runtime.v8", w.Runtime)
	assert.Equal(t, "/etc/envoy/plugin.wasm", w.Filename)
	assert.Equal(t, envoyconfig.FailClosed, w.FailurePolicy)
	assert.Equal(t, "sessionsvc", w.PluginCluster)
	assert.False(t, w.AllowOnHeadersStopIteration, "the default configuration must work without the Envoy 1.35 opt-in")

	var plugin struct {
		Cluster     string `json:"cluster"`
		InternalKey string `json:"internal_key"`
		Verify      struct {
			Mode   string `json:"mode"`
			Secret string `json:"secret"`
		} `json:"verify"`
		Login struct {
			Path string `json:"path"`
		} `json:"login"`
	}
	require.NoError(t, json.Unmarshal([]byte(w.Configuration), &plugin))
	assert.Equal(t, "sessionsvc", plugin.Cluster)
	assert.NotEmpty(t, plugin.InternalKey)
	assert.Equal(t, "hs256", plugin.Verify.Mode)
	assert.Equal(t, "meshsession-demo-secret", plugin.Verify.Secret, "must match the demo app's default JWT_SECRET")
	assert.Equal(t, "/api/auth/local", plugin.Login.Path)

	for path, want := range map[string]string{
		"/api/magic-sessionmanager/my-sessions": "sessionsvc",
		"/api/articles":                         "app",
		"/api/auth/local":                       "app",
		"/api/magic-sessionmanager":             "app", // no trailing slash: not the prefix
		"/":                                     "app",
	} {
		r, ok := c.Route(path)
		require.True(t, ok, path)
		assert.Equal(t, want, r.Cluster, path)
	}
}

func TestSetClusterAddress(t *testing.T) {
	c, err := envoyconfig.Load(repoEnvoyYAML)
	require.NoError(t, err)
	require.NoError(t, c.SetClusterAddress("app", "127.0.0.1:3000"))
	assert.Equal(t, "127.0.0.1:3000", c.Clusters["app"].Address.String())
	assert.Len(t, c.Clusters["app"].Endpoints, 1)
	assert.ErrorContains(t, c.SetClusterAddress("nope", "127.0.0.1:1"), `no cluster "nope"`)
	assert.ErrorContains(t, c.SetClusterAddress("app", "127.0.0.1"), "missing port")
	assert.ErrorContains(t, c.SetClusterAddress("app", "127.0.0.1:http"), "invalid port")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := envoyconfig.Load(filepath.Join(t.TempDir(), "envoy.yaml"))
	require.ErrorContains(t, err, "no such file")
}

// TestMutatedYAML: textual edits of the repository's envoy.yaml must fail
// with a message naming the file and the field.
func TestMutatedYAML(t *testing.T) {
	base := readRepoYAML(t)
	wasmStart := strings.Index(base, "          - name: envoy.filters.http.wasm")
	routerStart := strings.Index(base, "          - name: envoy.filters.http.router")
	require.Positive(t, wasmStart)
	require.Greater(t, routerStart, wasmStart)

	tests := []struct {
		name   string
		old    string
		new    string
		edit   func(string) string
		want   []string
		decode bool // the schema check alone (Decode) must already fail
	}{
		{name: "unknown field", old: "stat_prefix: ingress_http", new: "stat_prefx: ingress_http", decode: true,
			want: []string{`envoy.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config: unknown field "stat_prefx"`}},
		{name: "unknown top-level field", old: "static_resources:", new: "static_resource:", decode: true,
			want: []string{`envoy.yaml: (root): unknown field "static_resource"`}},
		{name: "wrong type", old: "port_value: 10000", new: "port_value: ten", decode: true,
			want: []string{"envoy.yaml: static_resources.listeners[0].address.socket_address.port_value:", "ten"}},
		{name: "wrong type list for object", old: `domains: ["*"]`, new: `domains: "*"`, decode: true,
			want: []string{"envoy.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domains:"}},
		{name: "bad failure_policy", old: "failure_policy: FAIL_CLOSED", new: "failure_policy: FAIL_SOMETIMES", decode: true,
			want: []string{"envoy.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.failure_policy:", "FAIL_SOMETIMES"}},
		{name: "bad path_with_escaped_slashes_action", old: "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT",
			new: "path_with_escaped_slashes_action: UNESCAPE_SOMETIMES", decode: true,
			want: []string{"envoy.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.path_with_escaped_slashes_action:", "UNESCAPE_SOMETIMES"}},
		{name: "unregistered extension type", old: "http.router.v3.Router", new: "http.router.v3.Routr", decode: true,
			want: []string{"envoy.yaml:", "envoy.extensions.filters.http.router.v3.Routr"}},
		{name: "validation rule (empty stat_prefix)", old: "stat_prefix: ingress_http", new: `stat_prefix: ""`, decode: true,
			want: []string{"envoy.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config:", "StatPrefix"}},
		{name: "validation rule (connect_timeout)", old: "connect_timeout: 1s", new: "connect_timeout: 0s", decode: true,
			want: []string{"envoy.yaml: static_resources.clusters[1]: invalid Cluster.ConnectTimeout: value must be greater than 0s"}},
		{name: "yaml syntax", old: "  listeners:\n", new: "  listeners:\n\t- oops\n", decode: true,
			want: []string{"envoy.yaml:", "yaml"}},
		{name: "route to missing cluster", old: "route: { cluster: app, timeout: 15s }", new: "route: { cluster: ap, timeout: 15s }",
			want: []string{`envoy.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[1].route.cluster: cluster "ap" is not defined in static_resources.clusters`}},
		{name: "plugin cluster missing", old: `"cluster": "sessionsvc"`, new: `"cluster": "sessions"`,
			want: []string{`http_filters[0].typed_config.config.configuration: plugin "cluster" "sessions" is not defined`}},
		{name: "plugin configuration not JSON", old: `"cluster": "sessionsvc",`, new: `"cluster": "sessionsvc",,`,
			want: []string{"config.configuration: plugin configuration is not a JSON object"}},
		{name: "configuration not a StringValue", old: "type.googleapis.com/google.protobuf.StringValue", new: "type.googleapis.com/google.protobuf.Struct",
			decode: true, want: []string{"envoy.yaml:", "config.configuration"}},
		{name: "missing wasm filter", edit: func(s string) string { return s[:wasmStart] + s[routerStart:] },
			want: []string{"envoy.yaml: static_resources.listeners[0]: no envoy.filters.http.wasm filter"}},
		{name: "router not last", edit: func(s string) string {
			return s[:wasmStart] + s[routerStart:strings.Index(s, "\n  clusters:")] + "\n" + s[wasmStart:routerStart] + s[strings.Index(s, "\n  clusters:"):]
		}, want: []string{"http_filters[1]: the last http filter must be envoy.filters.http.router"}},
		{name: "remote wasm code", old: "local:\n                      filename: /etc/envoy/plugin.wasm",
			new:  "remote:\n                      sha256: abc\n                      http_uri: {uri: \"https://example.com/p.wasm\", cluster: app, timeout: 1s}",
			want: []string{"config.vm_config.code: want local"}},
		{name: "empty file", edit: func(string) string { return "" }, decode: true, want: []string{"envoy.yaml: empty document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutated string
			if tt.edit != nil {
				mutated = tt.edit(base)
			} else {
				require.Contains(t, base, tt.old, "the test's anchor text must exist in envoy.yaml")
				mutated = strings.Replace(base, tt.old, tt.new, 1)
			}
			_, err := envoyconfig.Parse("envoy.yaml", []byte(mutated))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Less(t, len(err.Error()), 500, "an error message, not a dump")
			_, derr := envoyconfig.Decode("envoy.yaml", []byte(mutated))
			if tt.decode {
				assert.Error(t, derr, "Envoy's schema alone must refuse this")
			} else {
				assert.NoError(t, derr, "schema-valid: only the semantic checks refuse it")
			}
		})
	}
}

// TestMutatedProto: structural edits made on the decoded bootstrap and fed
// back as JSON (which is YAML).
func TestMutatedProto(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, b *bootstrapT)
		want string
	}{
		{name: "no listener", edit: func(_ *testing.T, b *bootstrapT) { b.StaticResources.Listeners = nil },
			want: "static_resources.listeners: no listener defined"},
		{name: "two listeners", edit: func(_ *testing.T, b *bootstrapT) {
			l := proto.Clone(b.StaticResources.Listeners[0]).(*listenerv3.Listener)
			l.Name = "second"
			b.StaticResources.Listeners = append(b.StaticResources.Listeners, l)
		}, want: "2 listeners defined"},
		{name: "no http filters", edit: func(t *testing.T, b *bootstrapT) {
			editHCM(t, b, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = nil })
		}, want: "http_filters: none defined"},
		{name: "rds instead of inline routes", edit: func(t *testing.T, b *bootstrapT) {
			editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
				h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "x"}}
			})
		}, want: "want an inline route_config"},
		{name: "duplicate cluster", edit: func(_ *testing.T, b *bootstrapT) {
			b.StaticResources.Clusters = append(b.StaticResources.Clusters, b.StaticResources.Clusters[0])
		}, want: `static_resources.clusters[2]: duplicate cluster name "app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := envoyconfig.Decode("envoy.yaml", []byte(readRepoYAML(t)))
			require.NoError(t, err)
			tt.edit(t, b)
			js, err := protojson.Marshal(b)
			require.NoError(t, err)
			_, err = envoyconfig.Parse("envoy.yaml", js)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func editHCM(t *testing.T, b *bootstrapT, f func(*hcmv3.HttpConnectionManager)) {
	t.Helper()
	filter := b.StaticResources.Listeners[0].FilterChains[0].Filters[0]
	var h hcmv3.HttpConnectionManager
	require.NoError(t, filter.GetTypedConfig().UnmarshalTo(&h))
	f(&h)
	a, err := anypb.New(&h)
	require.NoError(t, err)
	filter.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
}

func FuzzParse(f *testing.F) {
	f.Add(readRepoYAML(f))
	f.Add("static_resources: {listeners: [{name: x}]}")
	f.Add(`{"admin": {"address": {"socket_address": {"port_value": "x"}}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := envoyconfig.Parse("envoy.yaml", []byte(s))
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "envoy.yaml: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

func TestRepoEnvoyYAMLHasNoDeprecatedFields(t *testing.T) {
	c, err := envoyconfig.Load(repoEnvoyYAML)
	require.NoError(t, err)
	assert.Empty(t, envoyconfig.DeprecatedFields(c.Bootstrap))
}

func TestDeprecatedFields(t *testing.T) {
	mutated := strings.Replace(readRepoYAML(t), "failure_policy: FAIL_CLOSED", "fail_open: true", 1)
	c, err := envoyconfig.Parse("envoy.yaml", []byte(mutated))
	require.NoError(t, err)
	assert.Equal(t, envoyconfig.FailOpen, c.Wasm.FailurePolicy, "the deprecated flag is honoured as Envoy does")
	assert.Equal(t, []string{
		"static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.fail_open",
	}, envoyconfig.DeprecatedFields(c.Bootstrap))
}

func BenchmarkParse(b *testing.B) {
	data := []byte(readRepoYAML(b))
	for b.Loop() {
		if _, err := envoyconfig.Parse("envoy.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPathSettingsAndOptIn(t *testing.T) {
	base := readRepoYAML(t)
	for _, tc := range []struct {
		name, old, new string
		check          func(t *testing.T, c *envoyconfig.Config)
	}{
		{"opt-in", "failure_policy: FAIL_CLOSED", "failure_policy: FAIL_CLOSED\n                allow_on_headers_stop_iteration: true",
			func(t *testing.T, c *envoyconfig.Config) { assert.True(t, c.Wasm.AllowOnHeadersStopIteration) }},
		{"escaped slashes unset is Envoy's KEEP_UNCHANGED", "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT", "",
			func(t *testing.T, c *envoyconfig.Config) {
				assert.Equal(t, envoyconfig.EscapedSlashesKeep, c.Listener.Paths.EscapedSlashes)
			}},
		{"no normalisation", "normalize_path: true", "normalize_path: false",
			func(t *testing.T, c *envoyconfig.Config) { assert.False(t, c.Listener.Paths.Normalize) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mutated := strings.Replace(base, tc.old, tc.new, 1)
			require.NotEqual(t, base, mutated)
			c, err := envoyconfig.Parse("envoy.yaml", []byte(mutated))
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}
