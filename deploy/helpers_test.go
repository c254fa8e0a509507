package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root, relative to this package.
const repoRoot = ".."

func repoPath(p string) string { return filepath.Join(repoRoot, filepath.FromSlash(p)) }

// obj is a decoded YAML mapping.
type obj = map[string]any

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// readDocs decodes every non-empty document of a (multi-document) YAML file.
func readDocs(t *testing.T, path string) []obj {
	t.Helper()
	data, err := os.ReadFile(repoPath(path))
	require.NoError(t, err)
	return parseDocs(t, path, data)
}

// parseDocs decodes every non-empty YAML document of data.
func parseDocs(t *testing.T, name string, data []byte) []obj {
	t.Helper()
	var docs []obj
	for i, part := range docSep.Split(string(data), -1) {
		var m obj
		require.NoError(t, yaml.Unmarshal([]byte(part), &m), "%s: document %d", name, i)
		if m != nil {
			docs = append(docs, m)
		}
	}
	require.NotEmpty(t, docs, "%s: no document", name)
	return docs
}

// get walks keys (string) and indexes (int) through decoded YAML; it fails
// the test, naming the path, when a step is missing or of the wrong type.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	cur := v
	for i, step := range path {
		where := describe(path[:i+1])
		switch s := step.(type) {
		case string:
			m, ok := cur.(obj)
			require.True(t, ok, "%s: parent is not a mapping", where)
			next, ok := m[s]
			require.True(t, ok, "%s: missing", where)
			cur = next
		case int:
			l, ok := cur.([]any)
			require.True(t, ok, "%s: parent is not a list", where)
			require.Less(t, s, len(l), "%s: index out of range", where)
			cur = l[s]
		default:
			t.Fatalf("bad path step %T", step)
		}
	}
	return cur
}

// getAs is get's value as a T; what names T in the failure.
func getAs[T any](t *testing.T, v any, what string, path ...any) T {
	t.Helper()
	x, ok := get(t, v, path...).(T)
	require.True(t, ok, "%s: not %s", describe(path), what)
	return x
}

func getStr(t *testing.T, v any, path ...any) string {
	t.Helper()
	return getAs[string](t, v, "a string", path...)
}

func getObj(t *testing.T, v any, path ...any) obj {
	t.Helper()
	return getAs[obj](t, v, "a mapping", path...)
}

func getList(t *testing.T, v any, path ...any) []any {
	t.Helper()
	return getAs[[]any](t, v, "a list", path...)
}

func getNum(t *testing.T, v any, path ...any) int {
	t.Helper()
	return int(getAs[float64](t, v, "a number", path...))
}

func describe(path []any) string {
	var sb strings.Builder
	for _, p := range path {
		switch s := p.(type) {
		case string:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(s)
		case int:
			sb.WriteString("[" + strconv.Itoa(s) + "]")
		}
	}
	return sb.String()
}

// strings of a list of scalars.
func strs(t *testing.T, l []any) []string {
	t.Helper()
	out := make([]string, len(l))
	for i, v := range l {
		s, ok := v.(string)
		require.True(t, ok, "element %d (%v) is not a string", i, v)
		out[i] = s
	}
	return out
}

// requireKnownKeys fails on keys outside allowed (typos that a lenient
// consumer would silently ignore). Keys with prefix "x-" are extensions.
func requireKnownKeys(t *testing.T, where string, m obj, allowed ...string) {
	t.Helper()
	set := map[string]bool{}
	for _, a := range allowed {
		set[a] = true
	}
	for k := range m {
		if strings.HasPrefix(k, "x-") {
			continue
		}
		require.True(t, set[k], "%s: unknown key %q", where, k)
	}
}

// instruction is one Dockerfile instruction.
type instruction struct {
	cmd  string // upper-case
	args string
}

// readDockerfile returns the instructions of a Dockerfile (comments and
// line continuations handled).
func readDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	data, err := os.ReadFile(repoPath(path))
	require.NoError(t, err)
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.Zero(t, cur.Len(), "%s: dangling line continuation", path)
	return out
}

// stages splits instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}
