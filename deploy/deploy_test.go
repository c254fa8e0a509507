package deploy_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	networkingv1 "istio.io/api/networking/v1"
	securityv1 "istio.io/api/security/v1"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
	pluginconfig "github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/service"
)

const (
	composeFile     = "docker-compose.yml"
	wasmPluginFile  = "deploy/istio/wasmplugin.yaml"
	destRuleFile    = "deploy/istio/destinationrule.yaml"
	sessionsvcFile  = "deploy/k8s/sessionsvc.yaml"
	secretExample   = "deploy/k8s/postgres-secret.example.yaml"
	distrolessUID   = "65532"
	minEnvoyMinor   = 33 // first Envoy whose Wasm host has every WASI import a gc-built module needs
	envoyConfigPath = "/etc/envoy/envoy.yaml"
)

// listenEnv names the environment variable holding each service's listen
// address, to check it against the port envoy.yaml dials.
var listenEnv = map[string]string{
	"sessionsvc": "SESSIONSVC_ADDR",
	"demoapp":    "DEMOAPP_ADDR",
}

func loadEnvoy(t *testing.T) (*envoyconfig.Config, *pluginconfig.Config) {
	t.Helper()
	ec, err := envoyconfig.Load(repoPath("envoy.yaml"))
	require.NoError(t, err)
	pc, err := pluginconfig.Parse([]byte(ec.Wasm.Configuration))
	require.NoError(t, err)
	return ec, pc
}

func envOf(t *testing.T, svc obj) obj {
	t.Helper()
	return getObj(t, svc, "environment")
}

func portOfAddr(t *testing.T, addr string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	n, err := strconv.ParseUint(p, 10, 16)
	require.NoError(t, err, addr)
	return uint32(n)
}

func TestCompose(t *testing.T) {
	ec, pc := loadEnvoy(t)
	c := readDocs(t, composeFile)[0]
	requireKnownKeys(t, composeFile, c, "name", "services", "volumes", "networks", "secrets", "configs")

	services := getObj(t, c, "services")
	for _, name := range []string{"envoy", "sessionsvc", "postgres", "demoapp"} {
		require.Contains(t, services, name, "service %s", name)
	}
	for name, s := range services {
		svc, ok := s.(obj)
		require.True(t, ok, "services.%s: not a mapping", name)
		requireKnownKeys(t, "services."+name, svc, "image", "build", "command", "entrypoint", "environment",
			"ports", "expose", "volumes", "depends_on", "healthcheck", "restart", "user", "read_only", "tmpfs",
			"cap_drop", "security_opt", "init", "networks", "labels", "stop_grace_period", "env_file")
		if b, ok := svc["build"]; ok {
			requireKnownKeys(t, "services."+name+".build", b.(obj), "context", "dockerfile", "args", "target")
			assert.Equal(t, ".", getStr(t, b, "context"), "services.%s.build.context: the repository root", name)
			df := getStr(t, b, "dockerfile")
			_, err := os.Stat(repoPath(df))
			require.NoError(t, err, "services.%s.build.dockerfile", name)
		}
	}

	t.Run("envoy", func(t *testing.T) {
		envoy := getObj(t, services, "envoy")
		image := getStr(t, envoy, "image")
		m := regexp.MustCompile(`^envoyproxy/envoy:v1\.(\d+)\.(\d+)$`).FindStringSubmatch(image)
		require.NotNil(t, m, "envoy image %q: want envoyproxy/envoy:v1.<minor>.<patch>", image)
		minor, _ := strconv.Atoi(m[1])
		assert.GreaterOrEqual(t, minor, minEnvoyMinor, "envoy image %q", image)

		vols := volumes(t, getList(t, envoy, "volumes"))
		assert.Contains(t, vols, "./envoy.yaml:"+envoyConfigPath+":ro")
		assert.Contains(t, vols, "./plugin.wasm:"+ec.Wasm.Filename+":ro", "mounted where envoy.yaml's vm_config loads it")
		cmd := strs(t, getList(t, envoy, "command"))
		i := indexOf(cmd, "-c")
		require.GreaterOrEqual(t, i, 0, "envoy command: no -c")
		require.Less(t, i+1, len(cmd))
		assert.Equal(t, envoyConfigPath, cmd[i+1])

		ports := strs(t, getList(t, envoy, "ports"))
		lp := strconv.Itoa(int(ec.Listener.Address.Port))
		assert.Contains(t, ports, lp+":"+lp, "the listener port of envoy.yaml")
		require.NotNil(t, ec.Admin)
		ap := strconv.Itoa(int(ec.Admin.Port))
		assert.Contains(t, ports, ap+":"+ap, "the admin port of envoy.yaml")
		for _, dep := range []string{"sessionsvc", "demoapp"} {
			assert.Contains(t, getObj(t, envoy, "depends_on"), dep)
		}
	})

	t.Run("clusters are compose services", func(t *testing.T) {
		require.NotEmpty(t, ec.Clusters)
		for name, cl := range ec.Clusters {
			svc, ok := services[cl.Address.Host].(obj)
			require.True(t, ok, "envoy.yaml cluster %q dials %q: no such compose service", name, cl.Address.Host)
			envName, ok := listenEnv[cl.Address.Host]
			require.True(t, ok, "no listen-address variable known for %q", cl.Address.Host)
			addr := getStr(t, envOf(t, svc), envName)
			assert.Equal(t, cl.Address.Port, portOfAddr(t, addr), "cluster %q port vs %s=%s", name, envName, addr)
		}
	})

	t.Run("secrets agree", func(t *testing.T) {
		ss := envOf(t, getObj(t, services, "sessionsvc"))
		da := envOf(t, getObj(t, services, "demoapp"))
		require.NotEmpty(t, pc.InternalKey)
		assert.Equal(t, pc.InternalKey, getStr(t, ss, "MESHSESSION_INTERNAL_KEY"), "plugin internal_key vs sessionsvc")
		assert.Equal(t, pluginconfig.ModeHS256, pc.Verify.Mode)
		assert.Equal(t, pc.Verify.Secret, getStr(t, ss, "JWT_SECRET"), "plugin verify.secret vs sessionsvc JWT_SECRET")
		assert.Equal(t, pc.Verify.Secret, getStr(t, da, "JWT_SECRET"), "plugin verify.secret vs demoapp JWT_SECRET")
		assert.NotEmpty(t, getStr(t, ss, "ADMIN_TOKEN"))
		key, err := base64.StdEncoding.DecodeString(getStr(t, ss, "SESSION_ENCRYPTION_KEY"))
		require.NoError(t, err, "SESSION_ENCRYPTION_KEY")
		assert.Len(t, key, 32, "SESSION_ENCRYPTION_KEY: 32 bytes")

		// sessionsvc's own configuration parser accepts the environment.
		cfg := parseSessionsvcEnv(t, ss)
		assert.Equal(t, pc.InternalKey, cfg.InternalKey)
		assert.Equal(t, pc.Verify.Secret, cfg.JWTSecret)
		_, err = secrets.ParseKeyring(cfg.EncryptionKey)
		require.NoError(t, err, "sessionsvc refuses SESSION_ENCRYPTION_KEY")
	})

	t.Run("postgres", func(t *testing.T) {
		pg := getObj(t, services, "postgres")
		assert.Equal(t, "postgres:16", getStr(t, pg, "image"))
		assert.NotEmpty(t, getList(t, pg, "healthcheck", "test"))
		ss := getObj(t, services, "sessionsvc")
		assert.Equal(t, "service_healthy", getStr(t, ss, "depends_on", "postgres", "condition"))

		u, err := url.Parse(getStr(t, envOf(t, ss), "DATABASE_URL"))
		require.NoError(t, err)
		assert.Equal(t, "postgres", u.Scheme)
		assert.Equal(t, "postgres", u.Hostname(), "DATABASE_URL host is the compose service")
		assert.Equal(t, "5432", u.Port())
		pgEnv := envOf(t, pg)
		pw, _ := u.User.Password()
		assert.Equal(t, getStr(t, pgEnv, "POSTGRES_USER"), u.User.Username())
		assert.Equal(t, getStr(t, pgEnv, "POSTGRES_PASSWORD"), pw)
		assert.Equal(t, "/"+getStr(t, pgEnv, "POSTGRES_DB"), u.Path)
	})
}

func indexOf(l []string, s string) int {
	for i, v := range l {
		if v == s {
			return i
		}
	}
	return -1
}

func TestServiceDockerfiles(t *testing.T) {
	for _, tt := range []struct {
		file, port string
	}{
		{"deploy/sessionsvc.Dockerfile", "8081"},
		{"deploy/demoapp.Dockerfile", "3000"},
	} {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			st := stages(readDockerfile(t, tt.file))
			require.GreaterOrEqual(t, len(st), 2, "multi-stage build")

			var built string
			for _, in := range st[0] {
				if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
					assert.Contains(t, in.args, "CGO_ENABLED=0", "static binary")
					fields := strings.Fields(in.args)
					built = fields[len(fields)-1]
				}
			}
			require.NotEmpty(t, built, "no go build in the build stage")
			requireMainPackage(t, built)

			final := st[len(st)-1]
			from := strings.Fields(final[0].args)[0]
			assert.True(t, from == "scratch" || strings.HasPrefix(from, "gcr.io/distroless/static"),
				"final stage %q: want scratch or distroless/static", from)
			var user, expose, entry string
			for _, in := range final {
				switch in.cmd {
				case "USER":
					user = in.args
				case "EXPOSE":
					expose = in.args
				case "ENTRYPOINT":
					entry = in.args
				}
			}
			uid, _, _ := strings.Cut(user, ":")
			assert.NotContains(t, []string{"", "0", "root"}, uid, "final stage must run as non-root")
			assert.Equal(t, distrolessUID, uid, "numeric uid (Kubernetes runAsNonRoot checks it)")
			assert.Equal(t, tt.port, expose)
			assert.NotEmpty(t, entry)
		})
	}
}

// requireMainPackage checks that a `go build` target (./dir) is a main package.
func requireMainPackage(t *testing.T, target string) {
	t.Helper()
	dir := repoPath(strings.TrimPrefix(target, "./"))
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "go build target %s: no Go files in %s", target, dir)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		if regexp.MustCompile(`(?m)^package main\b`).Match(data) {
			return
		}
	}
	t.Fatalf("go build target %s is not a main package", target)
}

func TestPluginDockerfile(t *testing.T) {
	ins := readDockerfile(t, "deploy/plugin.Dockerfile")
	require.Equal(t, []instruction{
		{cmd: "FROM", args: "scratch"},
		{cmd: "COPY", args: "plugin.wasm ./plugin.wasm"},
	}, ins, "Istio's Wasm OCI image: FROM scratch with plugin.wasm at the root")
	ignore, err := os.ReadFile(repoPath("deploy/plugin.Dockerfile.dockerignore"))
	require.NoError(t, err)
	assert.Contains(t, strings.Fields(string(ignore)), "!plugin.wasm", "the build context must keep plugin.wasm")
}

// k8sService is the sessionsvc Service as the Istio files must name it.
type k8sService struct {
	name, namespace string
	port            int
}

func (s k8sService) fqdn() string { return s.name + "." + s.namespace + ".svc.cluster.local" }

// istioCluster is the outbound cluster name Istio gives a Service port.
func (s k8sService) istioCluster() string { return fmt.Sprintf("outbound|%d||%s", s.port, s.fqdn()) }

func loadSessionsvcService(t *testing.T) (k8sService, []obj) {
	t.Helper()
	docs := readDocs(t, sessionsvcFile)
	svc := byKind(t, sessionsvcFile, docs, "Service")
	ports := getList(t, svc, "spec", "ports")
	require.Len(t, ports, 1)
	return k8sService{
		name:      getStr(t, svc, "metadata", "name"),
		namespace: getStr(t, svc, "metadata", "namespace"),
		port:      getNum(t, ports[0], "port"),
	}, docs
}

// pluginConfigJSON converts a WasmPlugin's pluginConfig as Istio does
// (google.protobuf.Struct serialized to JSON).
func pluginConfigJSON(t *testing.T, pc obj) []byte {
	t.Helper()
	s, err := structpb.NewStruct(pc)
	require.NoError(t, err)
	js, err := protojson.Marshal(s)
	require.NoError(t, err)
	return js
}

func TestIstioWasmPlugin(t *testing.T) {
	ec, envoyPlugin := loadEnvoy(t)
	svc, _ := loadSessionsvcService(t)
	wp := readDocs(t, wasmPluginFile)
	require.Len(t, wp, 1)
	w := wp[0]
	assert.Equal(t, "extensions.istio.io/v1alpha1", getStr(t, w, "apiVersion"))
	assert.Equal(t, "WasmPlugin", getStr(t, w, "kind"))
	assert.NotEmpty(t, getStr(t, w, "metadata", "name"))
	assert.NotEmpty(t, getStr(t, w, "metadata", "namespace"))

	spec := getObj(t, w, "spec")
	var typed extensionsv1alpha1.WasmPlugin
	requireIstioSpec(t, wasmPluginFile, spec, &typed)
	assert.Equal(t, extensionsv1alpha1.PluginType_HTTP, typed.GetType())
	assert.Regexp(t, `^oci://[^/]+/.+/meshsession-plugin:[\w.-]+$`, getStr(t, spec, "url"))
	assert.Contains(t, []string{"AUTHN", "AUTHZ", "STATS"}, getStr(t, spec, "phase"))
	assert.Contains(t, []string{"FAIL_CLOSE", "FAIL_OPEN"}, getStr(t, spec, "failStrategy"))
	assert.Equal(t, "HTTP", getStr(t, spec, "type"))
	assert.NotEmpty(t, getObj(t, spec, "selector", "matchLabels"))
	assert.Equal(t, ec.Wasm.RootID, getStr(t, spec, "pluginName"), "pluginName is the root_id, as in envoy.yaml")

	raw := getObj(t, spec, "pluginConfig")
	pc, err := pluginconfig.Parse(pluginConfigJSON(t, raw))
	require.NoError(t, err, "pluginConfig must be accepted by the plugin's parser")
	assert.Equal(t, svc.istioCluster(), pc.Cluster, "Istio's cluster name for the sessionsvc Service")
	assert.Equal(t, svc.fqdn(), pc.Authority)
	assert.NotEmpty(t, pc.InternalKey)

	// The same fields as envoy.yaml's configuration (values may differ).
	var envoyRaw map[string]any
	require.NoError(t, json.Unmarshal([]byte(ec.Wasm.Configuration), &envoyRaw))
	assert.Equal(t, keyPaths("", envoyRaw), keyPaths("", raw), "pluginConfig fields vs envoy.yaml configuration")
	assert.Equal(t, envoyPlugin.Login, pc.Login)
	assert.Equal(t, envoyPlugin.Refresh, pc.Refresh)
	assert.Equal(t, envoyPlugin.Logout, pc.Logout)
	assert.Equal(t, envoyPlugin.SyncInterval, pc.SyncInterval)
}

// requireIstioSpec decodes a resource's spec into Istio's own API type
// (istio.io/api protos) strictly: an unknown field, a wrong type or an
// unknown enum value fails, as the CRD's validation would refuse it.
func requireIstioSpec(t *testing.T, file string, spec obj, m proto.Message) {
	t.Helper()
	js, err := json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, protojson.Unmarshal(js, m), "%s: spec does not match %s", file, m.ProtoReflect().Descriptor().FullName())
}

// keyPaths lists the dotted key paths of nested mappings, sorted.
func keyPaths(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		p := prefix + k
		out = append(out, p)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, keyPaths(p+".", sub)...)
		}
	}
	sort.Strings(out)
	return out
}

func TestIstioDestinationRule(t *testing.T) {
	svc, k8sDocs := loadSessionsvcService(t)
	docs := readDocs(t, destRuleFile)
	dr := byKind(t, destRuleFile, docs, "DestinationRule")
	requireIstioSpec(t, destRuleFile, getObj(t, dr, "spec"), &networkingv1.DestinationRule{})
	assert.Equal(t, "networking.istio.io/v1", getStr(t, dr, "apiVersion"))
	assert.Equal(t, svc.fqdn(), getStr(t, dr, "spec", "host"))
	assert.Equal(t, svc.namespace, getStr(t, dr, "metadata", "namespace"))
	assert.Equal(t, "ISTIO_MUTUAL", getStr(t, dr, "spec", "trafficPolicy", "tls", "mode"))

	pa := byKind(t, destRuleFile, docs, "PeerAuthentication")
	assert.Equal(t, "security.istio.io/v1", getStr(t, pa, "apiVersion"))
	requireIstioSpec(t, destRuleFile, getObj(t, pa, "spec"), &securityv1.PeerAuthentication{})
	assert.Equal(t, "STRICT", getStr(t, pa, "spec", "mtls", "mode"))
	assert.Equal(t, svc.namespace, getStr(t, pa, "metadata", "namespace"))
	podLabels := getObj(t, byKind(t, sessionsvcFile, k8sDocs, "Deployment"), "spec", "template", "metadata", "labels")
	for k, v := range getObj(t, pa, "spec", "selector", "matchLabels") {
		assert.Equal(t, v, podLabels[k], "PeerAuthentication selector %s", k)
	}
}

func TestK8sSessionsvc(t *testing.T) {
	svc, docs := loadSessionsvcService(t)
	ns := byKind(t, sessionsvcFile, docs, "Namespace")
	assert.Equal(t, svc.namespace, getStr(t, ns, "metadata", "name"))
	byKind(t, sessionsvcFile, docs, "ServiceAccount")

	dep := byKind(t, sessionsvcFile, docs, "Deployment")
	assert.Equal(t, "apps/v1", getStr(t, dep, "apiVersion"))
	assert.Equal(t, svc.namespace, getStr(t, dep, "metadata", "namespace"))
	podLabels := getObj(t, dep, "spec", "template", "metadata", "labels")
	for k, v := range getObj(t, dep, "spec", "selector", "matchLabels") {
		assert.Equal(t, v, podLabels[k], "Deployment selector %s must match the pod labels", k)
	}
	pod := getObj(t, dep, "spec", "template", "spec")
	assert.Equal(t, true, get(t, pod, "securityContext", "runAsNonRoot"))
	assert.Equal(t, distrolessUID, strconv.Itoa(getNum(t, pod, "securityContext", "runAsUser")), "the image's USER")

	// Typos in optional keys would be dropped silently by a lenient reader
	// (kubectl refuses them): check the keys we write against the API's.
	requireKnownKeys(t, "Deployment.spec", getObj(t, dep, "spec"), "replicas", "selector", "template", "strategy",
		"minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds", "paused")
	requireKnownKeys(t, "Deployment.spec.template.spec", pod, "serviceAccountName", "securityContext", "containers",
		"initContainers", "volumes", "affinity", "tolerations", "nodeSelector", "topologySpreadConstraints",
		"terminationGracePeriodSeconds", "priorityClassName", "imagePullSecrets", "automountServiceAccountToken")
	containers := getList(t, pod, "containers")
	require.Len(t, containers, 1)
	ctr := containers[0].(obj)
	requireKnownKeys(t, "container", ctr, "name", "image", "imagePullPolicy", "command", "args", "ports", "env",
		"envFrom", "readinessProbe", "livenessProbe", "startupProbe", "resources", "securityContext", "volumeMounts", "lifecycle")
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		requireKnownKeys(t, "container."+probe, getObj(t, ctr, probe), "httpGet", "tcpSocket", "exec", "grpc",
			"initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold",
			"terminationGracePeriodSeconds")
		requireKnownKeys(t, "container."+probe+".httpGet", getObj(t, ctr, probe, "httpGet"), "path", "port", "scheme", "host", "httpHeaders")
	}
	ports := getList(t, ctr, "ports")
	require.Len(t, ports, 1)
	portName := getStr(t, ports[0], "name")
	containerPort := getNum(t, ports[0], "containerPort")
	assert.Equal(t, "/readyz", getStr(t, ctr, "readinessProbe", "httpGet", "path"))
	assert.Equal(t, "/healthz", getStr(t, ctr, "livenessProbe", "httpGet", "path"))
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		assert.Equal(t, portName, getStr(t, ctr, probe, "httpGet", "port"), "%s port", probe)
	}
	for _, kind := range []string{"requests", "limits"} {
		for _, res := range []string{"cpu", "memory"} {
			assert.NotEmpty(t, get(t, ctr, "resources", kind, res), "resources.%s.%s", kind, res)
		}
	}

	secretName := "sessionsvc-secrets"
	secret := byName(t, secretExample, readDocs(t, secretExample), "Secret", secretName)
	assert.Equal(t, svc.namespace, getStr(t, secret, "metadata", "namespace"))
	secretData := getObj(t, secret, "stringData")
	env := envByName(t, ctr)
	for _, name := range []string{"DATABASE_URL", "MESHSESSION_INTERNAL_KEY", "JWT_SECRET", "ADMIN_TOKEN", "SESSION_ENCRYPTION_KEY"} {
		e, ok := env[name]
		require.True(t, ok, "env %s missing", name)
		_, inline := e["value"]
		assert.False(t, inline, "env %s: must come from the Secret, not inline", name)
		assert.Equal(t, secretName, getStr(t, e, "valueFrom", "secretKeyRef", "name"), "env %s", name)
		key := getStr(t, e, "valueFrom", "secretKeyRef", "key")
		assert.Contains(t, secretData, key, "env %s: key %q not in the example Secret", name, key)
	}
	// sessionsvc's own configuration parser accepts the environment the pod
	// gets (Secret references resolved from the example).
	resolved := obj{}
	for name, e := range env {
		if v, ok := e["value"]; ok {
			resolved[name] = v
			continue
		}
		resolved[name] = getStr(t, secretData, getStr(t, e, "valueFrom", "secretKeyRef", "key"))
	}
	cfg := parseSessionsvcEnv(t, resolved)
	assert.True(t, strings.HasPrefix(cfg.DatabaseURL, "postgres://"), "PostgreSQL: several replicas share it")
	assert.Equal(t, "json", cfg.LogFormat)
	addr := getStr(t, env["SESSIONSVC_ADDR"], "value")
	assert.Equal(t, uint32(containerPort), portOfAddr(t, addr), "SESSIONSVC_ADDR vs containerPort")
	assert.True(t, strings.HasPrefix(getStr(t, secretData, "DATABASE_URL"), "postgres://"))

	service := byKind(t, sessionsvcFile, docs, "Service")
	for k, v := range getObj(t, service, "spec", "selector") {
		assert.Equal(t, v, podLabels[k], "Service selector %s must match the pod labels", k)
	}
	sp := getList(t, service, "spec", "ports")[0].(obj)
	assert.Equal(t, portName, getStr(t, sp, "targetPort"))
	assert.True(t, strings.HasPrefix(getStr(t, sp, "name"), "http"), "Istio protocol selection by port name")

	// The example Secret and the WasmPlugin must agree on the shared values.
	wp := readDocs(t, wasmPluginFile)[0]
	pc, err := pluginconfig.Parse(pluginConfigJSON(t, getObj(t, wp, "spec", "pluginConfig")))
	require.NoError(t, err)
	assert.Equal(t, pc.InternalKey, getStr(t, secretData, "MESHSESSION_INTERNAL_KEY"), "internal key: Secret vs WasmPlugin")
	assert.Equal(t, pc.Verify.Secret, getStr(t, secretData, "JWT_SECRET"), "JWT secret: Secret vs WasmPlugin")
}

// TestIstioSpecDecodingIsStrict: the Istio schema check refuses typos and
// bad enum values (so TestIstioWasmPlugin's pass means something).
func TestIstioSpecDecodingIsStrict(t *testing.T) {
	spec := getObj(t, readDocs(t, wasmPluginFile)[0], "spec")
	for _, tt := range []struct {
		name  string
		key   string
		value any
		want  string
	}{
		{"typo", "failStratgy", "FAIL_CLOSE", "failStratgy"},
		{"bad enum", "phase", "AUTHX", "AUTHX"},
		{"wrong type", "priority", "high", `"high"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mutated := obj{}
			for k, v := range spec {
				mutated[k] = v
			}
			mutated[tt.key] = tt.value
			js, err := json.Marshal(mutated)
			require.NoError(t, err)
			err = protojson.Unmarshal(js, &extensionsv1alpha1.WasmPlugin{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func envByName(t *testing.T, ctr obj) map[string]obj {
	t.Helper()
	env := map[string]obj{}
	for _, e := range getList(t, ctr, "env") {
		env[getStr(t, e, "name")] = e.(obj)
	}
	return env
}

// byName returns the only document of a kind with a name.
func byName(t *testing.T, path string, docs []obj, kind, name string) obj {
	t.Helper()
	var found []obj
	for _, d := range docs {
		if d["kind"] == kind && getStr(t, d, "metadata", "name") == name {
			found = append(found, d)
		}
	}
	require.Len(t, found, 1, "%s: want exactly one %s %q", path, kind, name)
	return found[0]
}

// TestK8sDemoapp: the demo app's manifests are what the WasmPlugin selects,
// and its secret agrees with sessionsvc's and the plugin's.
func TestK8sDemoapp(t *testing.T) {
	const file = "deploy/k8s/demoapp.yaml"
	docs := readDocs(t, file)
	wp := readDocs(t, wasmPluginFile)[0]
	ns := getStr(t, byKind(t, file, docs, "Namespace"), "metadata", "name")
	assert.Equal(t, getStr(t, wp, "metadata", "namespace"), ns, "the WasmPlugin lives in the app's namespace")

	dep := byKind(t, file, docs, "Deployment")
	assert.Equal(t, ns, getStr(t, dep, "metadata", "namespace"))
	podLabels := getObj(t, dep, "spec", "template", "metadata", "labels")
	for k, v := range getObj(t, wp, "spec", "selector", "matchLabels") {
		assert.Equal(t, v, podLabels[k], "WasmPlugin selector %s must match the demo app's pods", k)
	}
	for k, v := range getObj(t, dep, "spec", "selector", "matchLabels") {
		assert.Equal(t, v, podLabels[k], "Deployment selector %s", k)
	}
	ctr := getList(t, dep, "spec", "template", "spec", "containers")[0].(obj)
	port := getNum(t, ctr, "ports", 0, "containerPort")
	env := envByName(t, ctr)
	assert.Equal(t, uint32(port), portOfAddr(t, getStr(t, env["DEMOAPP_ADDR"], "value")))
	assert.Equal(t, "/healthz", getStr(t, ctr, "readinessProbe", "httpGet", "path"))

	secrets := readDocs(t, secretExample)
	ref := getObj(t, env["JWT_SECRET"], "valueFrom", "secretKeyRef")
	demoSecret := byName(t, secretExample, secrets, "Secret", getStr(t, ref, "name"))
	assert.Equal(t, ns, getStr(t, demoSecret, "metadata", "namespace"), "a Secret must be in the pod's namespace")
	demoJWT := getStr(t, demoSecret, "stringData", getStr(t, ref, "key"))
	svcSecret := byName(t, secretExample, secrets, "Secret", "sessionsvc-secrets")
	assert.Equal(t, getStr(t, svcSecret, "stringData", "JWT_SECRET"), demoJWT, "app and sessionsvc share the JWT secret")

	service := byKind(t, file, docs, "Service")
	assert.Equal(t, port, getNum(t, service, "spec", "ports", 0, "port"))
	for k, v := range getObj(t, service, "spec", "selector") {
		assert.Equal(t, v, podLabels[k], "Service selector %s", k)
	}
}

// TestIstioGateway: the ingress routes mirror envoy.yaml's (same prefixes,
// same targets) and name Services that exist.
func TestIstioGateway(t *testing.T) {
	const file = "deploy/istio/gateway.yaml"
	ec, _ := loadEnvoy(t)
	svc, _ := loadSessionsvcService(t)
	docs := readDocs(t, file)
	gw := byKind(t, file, docs, "Gateway")
	requireIstioSpec(t, file, getObj(t, gw, "spec"), &networkingv1.Gateway{})
	vs := byKind(t, file, docs, "VirtualService")
	requireIstioSpec(t, file, getObj(t, vs, "spec"), &networkingv1.VirtualService{})
	assert.Contains(t, strs(t, getList(t, vs, "spec", "gateways")), getStr(t, gw, "metadata", "name"))

	demoDocs := readDocs(t, "deploy/k8s/demoapp.yaml")
	demo := byKind(t, "deploy/k8s/demoapp.yaml", demoDocs, "Service")
	demoFQDN := getStr(t, demo, "metadata", "name") + "." + getStr(t, demo, "metadata", "namespace") + ".svc.cluster.local"
	targets := map[string]struct {
		host string
		port int
	}{
		"sessionsvc": {svc.fqdn(), svc.port},
		"app":        {demoFQDN, getNum(t, demo, "spec", "ports", 0, "port")},
	}

	routes := getList(t, vs, "spec", "http")
	require.Len(t, routes, len(ec.Routes), "one VirtualService route per envoy.yaml route")
	for i, r := range ec.Routes {
		vr := routes[i].(obj)
		if r.Prefix != "/" {
			assert.Equal(t, r.Prefix, getStr(t, vr, "match", 0, "uri", "prefix"), "route %d", i)
		} else {
			_, hasMatch := vr["match"]
			assert.False(t, hasMatch, "route %d: the catch-all has no match", i)
		}
		want := targets[r.Cluster]
		assert.Equal(t, want.host, getStr(t, vr, "route", 0, "destination", "host"), "route %d", i)
		assert.Equal(t, want.port, getNum(t, vr, "route", 0, "destination", "port", "number"), "route %d", i)
	}
}

// parseSessionsvcEnv runs sessionsvc's configuration parser over an
// environment given as a YAML mapping (no flags).
func parseSessionsvcEnv(t *testing.T, env obj) service.Config {
	t.Helper()
	getenv := func(k string) string {
		v, _ := env[k].(string)
		return v
	}
	cfg, _, _, err := service.ParseConfig("sessionsvc", nil, getenv, io.Discard)
	require.NoError(t, err, "sessionsvc refuses this environment")
	return cfg
}

// volumes normalizes compose volume entries (short "src:dst[:ro]" or long
// syntax) to the short form. Long-syntax bind mounts must not create a
// missing host path (Docker would create a directory in place of a file).
func volumes(t *testing.T, l []any) []string {
	t.Helper()
	out := make([]string, len(l))
	for i, v := range l {
		switch e := v.(type) {
		case string:
			out[i] = e
		case obj:
			requireKnownKeys(t, "volumes["+strconv.Itoa(i)+"]", e, "type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency")
			s := getStr(t, e, "source") + ":" + getStr(t, e, "target")
			if ro, _ := e["read_only"].(bool); ro {
				s += ":ro"
			}
			if getStr(t, e, "type") == "bind" {
				assert.Equal(t, false, get(t, e, "bind", "create_host_path"), "volumes[%d] (%s): set bind.create_host_path: false", i, s)
			}
			out[i] = s
		default:
			t.Fatalf("volumes[%d]: unexpected %T", i, v)
		}
	}
	return out
}
