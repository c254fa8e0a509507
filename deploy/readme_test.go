package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeSection returns the shell code blocks of a README section, in order.
func readmeSection(t *testing.T, heading string) [][]string {
	t.Helper()
	data, err := os.ReadFile(repoPath("README.md"))
	require.NoError(t, err)
	s := string(data)
	i := strings.Index(s, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "README: no section %q", heading)
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		var cmds []string
		for _, line := range strings.Split(strings.ReplaceAll(m[1], "\\\n", " "), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				cmds = append(cmds, line)
			}
		}
		blocks = append(blocks, cmds)
	}
	require.NotEmpty(t, blocks, "README %s: no sh block", heading)
	return blocks
}

// cluster is what the README's commands build: the objects applied, in
// order, and the images pushed.
type cluster struct {
	namespaces map[string]bool
	objects    []obj
}

// apply adds objects in order as kubectl does, refusing what the API server
// would refuse: an object that fails its API type, a namespaced object
// whose namespace does not exist yet, a kind no installed CRD serves.
func (c *cluster) apply(t *testing.T, source string, docs []obj) {
	t.Helper()
	for _, d := range docs {
		_, err := validateObject(d)
		require.NoError(t, err, "%s", source)
		kind := d["kind"].(string)
		if kind == "Namespace" {
			c.namespaces[nameOf(d)] = true
		} else if !clusterScoped[kind] {
			ns := nsOf(d)
			require.True(t, c.namespaces[ns], "%s: %s %s/%s applied before its namespace exists", source, kind, ns, nameOf(d))
		}
		c.objects = append(c.objects, d)
	}
}

// TestReadmeIstioFromCleanCluster runs the commands of the README's
// "Running under Istio" section against the API types: each block that
// applies manifests starts from a clean cluster (Istio installed) with the
// images the blocks before it pushed; its files are rendered and applied in
// order; the result must hold together and pull only images that were
// pushed (or public ones).
func TestReadmeIstioFromCleanCluster(t *testing.T) {
	blocks := readmeSection(t, "## Running under Istio")
	vars := map[string]string{}
	pushed := map[string]bool{}
	built := map[string]bool{}
	madePlugin := false
	scenarios := 0
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			v, ok := vars[k]
			require.True(t, ok, "README uses $%s before setting it", k)
			return v
		})
	}
	assign := regexp.MustCompile(`^([A-Z_]+)=(\S+)$`)
	for bi, cmds := range blocks {
		fs := memRepo(t)
		c := &cluster{namespaces: map[string]bool{}}
		for ns := range preexisting {
			c.namespaces[ns] = true
		}
		applied := false
		for _, line := range cmds {
			f := strings.Fields(line)
			where := "README block " + itoa(bi+1) + ": " + line
			switch {
			case assign.MatchString(f[0]):
				for _, a := range f {
					m := assign.FindStringSubmatch(a)
					require.NotNil(t, m, where)
					vars[m[1]] = m[2]
				}
			case line == "make plugin":
				madePlugin = true
			case f[0] == "docker" && f[1] == "build":
				file, tag := flagValue(t, f, "-f"), expand(flagValue(t, f, "-t"))
				assert.Equal(t, ".", f[len(f)-1], "%s: the context is the repository root", where)
				_, err := os.Stat(repoPath(file))
				require.NoError(t, err, where)
				if strings.Contains(file, "plugin.Dockerfile") {
					assert.True(t, madePlugin, "%s: plugin.wasm must be built first (make plugin)", where)
				}
				built[tag] = true
			case f[0] == "docker" && f[1] == "push":
				img := expand(f[2])
				assert.True(t, built[img], "%s: pushes an image not built before", where)
				pushed[img] = true
			case f[0] == "cp":
				copyFile(t, fs, f[1], f[2])
			case f[0] == "kubectl" && f[1] == "apply":
				applied = true
				for i := 2; i+1 < len(f); i += 2 {
					switch f[i] {
					case "-k":
						c.apply(t, where, kustomize(t, fs, f[i+1]))
					case "-f":
						data, err := fs.ReadFile("/repo/" + f[i+1])
						require.NoError(t, err, where)
						c.apply(t, where, splitDocs(t, f[i+1], data))
					default:
						t.Fatalf("%s: unknown kubectl apply flag %s", where, f[i])
					}
				}
			default:
				t.Fatalf("%s: command not understood by this test (extend it)", where)
			}
		}
		if !applied {
			continue
		}
		scenarios++
		checkCoherent(t, c.objects)
		checkMeshPolicies(t, c.objects)
		for _, img := range imagesOf(t, c.objects) {
			if strings.HasPrefix(img, "postgres:") {
				continue // public
			}
			assert.True(t, pushed[img], "block %d pulls %s, which no README step builds and pushes", bi+1, img)
		}
	}
	assert.Equal(t, 2, scenarios, "the demo and the production path")
}

func flagValue(t *testing.T, f []string, flag string) string {
	t.Helper()
	for i := 0; i+1 < len(f); i++ {
		if f[i] == flag {
			return f[i+1]
		}
	}
	t.Fatalf("%v: no %s", f, flag)
	return ""
}

func splitDocs(t *testing.T, name string, data []byte) []obj {
	t.Helper()
	return parseDocs(t, name, data)
}

// imagesOf lists container images and WasmPlugin OCI images.
func imagesOf(t *testing.T, docs []obj) []string {
	t.Helper()
	var out []string
	for _, d := range docs {
		if d["kind"] == "WasmPlugin" {
			out = append(out, strings.TrimPrefix(getStr(t, d, "spec", "url"), "oci://"))
			continue
		}
		if tpl, ok := podTemplate(d); ok {
			for _, c := range getList(t, tpl, "spec", "containers") {
				out = append(out, getStr(t, c, "image"))
			}
		}
	}
	return out
}
