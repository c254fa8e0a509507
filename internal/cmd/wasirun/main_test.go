package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun: the program gets its arguments, the environment and the host's
// files relative to the working directory, and its exit code comes back.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasip1 program")
	}
	bin := filepath.Join(t.TempDir(), "prog.wasm")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/prog")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Setenv("WASIRUN_TEST", "from-env")
	t.Setenv("WASIRUN_CACHE", t.TempDir())

	for _, want := range []int{0, 3} {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		stdout := os.Stdout
		os.Stdout = w
		code, err := run(context.Background(), bin, []string{itoa(want), "x"})
		os.Stdout = stdout
		require.NoError(t, w.Close())
		got, _ := readAll(r)
		require.NoError(t, err)
		assert.Equal(t, want, code)
		assert.Contains(t, got, `args=["`+itoa(want)+`" "x"] env=from-env file="hello from the host" err=<nil>`)
	}

	code, err := run(context.Background(), filepath.Join(t.TempDir(), "missing.wasm"), nil)
	assert.Error(t, err)
	assert.Equal(t, 1, code)
}

func itoa(i int) string { return string(rune('0' + i)) }

func readAll(f *os.File) (string, error) {
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}
