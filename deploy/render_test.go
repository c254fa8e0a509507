package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// memRepo copies the repository's deploy/ tree into an in-memory file
// system rooted at /repo, so tests can run the README's file commands (cp)
// without touching the work tree.
func memRepo(t *testing.T) filesys.FileSystem {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	root := repoPath("deploy")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fs.WriteFile("/repo/"+filepath.ToSlash(rel), data)
	})
	require.NoError(t, err)
	return fs
}

// kustomize renders a kustomization directory (repository-relative) as
// `kubectl apply -k` does (kubectl embeds this same kustomize API), in the
// order kubectl applies it.
func kustomize(t *testing.T, fs filesys.FileSystem, dir string) []obj {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	// What `kustomize build` passes without --reorder. Our overlays declare
	// sortOptions, which wins over any flag, so kubectl's default (which
	// changed across releases) does not matter; this only avoids kustomize's
	// warning that both are set.
	opts.Reorder = krusty.ReorderOptionUnspecified
	k := krusty.MakeKustomizer(opts)
	rm, err := k.Run(fs, "/repo/"+strings.TrimSuffix(dir, "/"))
	require.NoError(t, err, "kustomize build %s", dir)
	out, err := rm.AsYaml()
	require.NoError(t, err)
	return parseDocs(t, dir, out)
}
