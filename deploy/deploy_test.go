package deploy_test

import (
	"encoding/base64"
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
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
	pluginconfig "github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/service"
)

const (
	composeFile     = "docker-compose.yml"
	wasmPluginFile  = "deploy/kustomize/demo/wasmplugin.yaml"
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

	t.Run("ports on loopback only", func(t *testing.T) {
		for name, s := range services {
			p, ok := s.(obj)["ports"]
			if !ok {
				continue
			}
			for _, port := range p.([]any) {
				ps, ok := port.(string)
				require.True(t, ok, "services.%s.ports: use the short syntax HOST_IP:HOST_PORT:CONTAINER_PORT", name)
				assert.True(t, strings.HasPrefix(ps, "127.0.0.1:"), "services.%s.ports %q: publish on 127.0.0.1 only (Docker binds every interface otherwise)", name, ps)
			}
		}
	})

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
		assert.Contains(t, ports, "127.0.0.1:"+lp+":"+lp, "the listener port of envoy.yaml, on loopback")
		require.NotNil(t, ec.Admin)
		ap := strconv.Itoa(int(ec.Admin.Port))
		assert.Contains(t, ports, "127.0.0.1:"+ap+":"+ap, "the admin port of envoy.yaml, on loopback")
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
