package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fileRef matches what reads as a file in a comment: a repository-style
// path or a file name with a known extension.
var fileRef = regexp.MustCompile(`(?:^|[\s(\x60"'])((?:\.{0,2}/)?(?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)*\.(?:md|ya?ml|go|json|Dockerfile|example|wasm|sql))\b`)

// TestCommentsCiteExistingFiles: the deploy files, docker-compose.yml and
// envoy.yaml only point readers at files that exist (relative to the
// repository root or to the citing file; container paths excepted).
func TestCommentsCiteExistingFiles(t *testing.T) {
	files := []string{"docker-compose.yml", "envoy.yaml"}
	err := filepath.WalkDir(repoPath("deploy"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	require.NoError(t, err)
	generated := map[string]bool{"plugin.wasm": true, "sessionsvc.env": true, "my-secrets.yaml": true}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(repoPath(f))
		require.NoError(t, err)
		for i, line := range strings.Split(string(data), "\n") {
			_, comment, ok := strings.Cut(line, "#")
			if !ok {
				continue
			}
			for _, m := range fileRef.FindAllStringSubmatch(comment, -1) {
				ref := m[1]
				if strings.HasPrefix(ref, "/") || generated[filepath.Base(ref)] || strings.Contains(comment, "://"+ref) {
					continue
				}
				checked++
				_, errRoot := os.Stat(repoPath(ref))
				_, errDir := os.Stat(filepath.Join(filepath.Dir(repoPath(f)), filepath.FromSlash(ref)))
				assert.True(t, errRoot == nil || errDir == nil, "%s:%d cites %s, which does not exist", f, i+1, ref)
			}
		}
	}
	assert.Greater(t, checked, 10, "the scan finds the citations")
}
