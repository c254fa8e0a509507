package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
)

// TestInterruptExitsZero: the built program (what `make run` executes)
// stops on SIGINT (Ctrl-C) and exits with status 0, so make reports no
// error. (`go run` would exit 1 on the same signal whatever the program
// does, which is why the Makefile builds and execs the binary.)
func TestInterruptExitsZero(t *testing.T) {
	wasm, err := filepath.Abs(testenv.PluginWasmPath(t))
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "meshsession-dev")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(localPorts("-wasm", wasm, "-workers", "1"),
		"-database-url", "sqlite://"+filepath.Join(t.TempDir(), "i.db"))...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &syncBuffer{}
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Press Ctrl-C") {
			ready = true
			break
		}
	}
	require.True(t, ready, "no banner; stderr: %s", cmd.Stderr)
	go func() {
		for sc.Scan() { // drain
		}
	}()
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("exit status %d after SIGINT; stderr: %s", ee.ExitCode(), cmd.Stderr)
	}
	require.NoError(t, err)
	assert.Contains(t, cmd.Stderr.(*syncBuffer).String(), "msg=stopped")
}

// TestMakeRunExecsTheBinary: `make run` must not wrap the program in `go
// run`, which exits 1 on SIGINT even after a clean stop (make then prints
// "Error 1").
func TestMakeRunExecsTheBinary(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "Makefile"))
	require.NoError(t, err)
	var recipe []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "run:"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			in = false
		}
	}
	require.NotEmpty(t, recipe, "Makefile: no run recipe")
	for _, l := range recipe {
		assert.NotContains(t, l, "$(GO) run", "make run must exec the built program")
	}
	assert.Contains(t, recipe[len(recipe)-1], "exec .build/meshsession-dev", "the last step runs the binary in place of the shell")
}
