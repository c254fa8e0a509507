// Package testenv holds what several packages' tests share: the built
// plugin.wasm (skipped when absent, a failure when required), small Wasm
// test modules built once per test binary, and a goroutine-safe buffer for
// captured output.
//
// It is imported by tests only.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// EnvPluginWasm names the plugin.wasm to test (default: <module root>/plugin.wasm).
const EnvPluginWasm = "MESHSESSION_PLUGIN_WASM"

// EnvRequireWasm, set (as `make test` and CI=true do), turns a missing
// plugin.wasm from a skip into a failure.
const EnvRequireWasm = "MESHSESSION_REQUIRE_WASM"

// Required reports whether any of the environment variables is set to
// something other than "", "0" or "false"; CI is always consulted.
func Required(names ...string) bool {
	for _, n := range append(names, "CI") {
		if v := os.Getenv(n); v != "" && v != "0" && v != "false" {
			return true
		}
	}
	return false
}

// PositiveInt is the whole number above 0 in the environment variable
// name, or def when it is unset or holds anything else.
func PositiveInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Getenv is a lookup like os.Getenv over vars alone (nil: an empty
// environment), for commands that take their environment as a function.
func Getenv(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// Returned waits up to timeout for the error a stopped goroutine sends on
// done, which must be nil; what names the failure to return in time.
func Returned(tb testing.TB, done <-chan error, timeout time.Duration, what string) {
	tb.Helper()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("returned %v", err)
		}
	case <-time.After(timeout):
		tb.Fatal(what)
	}
}

// Need fails the test when err is non-nil and the requirement named by the
// environment variable env (or CI) is set, and skips it otherwise.
func Need(tb testing.TB, env string, err error, what string) {
	tb.Helper()
	if err == nil {
		return
	}
	if Required(env) {
		tb.Fatalf("%s is required (%s/CI): %v", what, env, err)
	}
	tb.Skipf("%s not available: %v", what, err)
}

// ModuleRoot is the folder holding the meshsession go.mod, found from the
// working directory (a test runs in its package's folder).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(b, []byte("module github.com/meshsession/meshsession\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no meshsession go.mod above the working directory")
		}
		dir = parent
	}
}

var plugin struct {
	once sync.Once
	path string
	bin  []byte
	err  error
}

func loadPlugin() {
	plugin.once.Do(func() {
		plugin.path = os.Getenv(EnvPluginWasm)
		if plugin.path == "" {
			root, err := ModuleRoot()
			if err != nil {
				plugin.err = err
				return
			}
			plugin.path = filepath.Join(root, "plugin.wasm")
		}
		plugin.bin, plugin.err = os.ReadFile(plugin.path)
		if plugin.err == nil && !bytes.HasPrefix(plugin.bin, []byte("\x00asm")) {
			plugin.bin, plugin.err = nil, fmt.Errorf("%s is not a WebAssembly module", plugin.path)
		}
		if plugin.err != nil {
			plugin.err = fmt.Errorf("%w (run `make plugin`, or set %s)", plugin.err, EnvPluginWasm)
		}
	})
}

// PluginWasm is the built plugin.wasm, read once per test binary. Missing,
// the test fails when MESHSESSION_REQUIRE_WASM or CI is set and is skipped
// otherwise.
func PluginWasm(tb testing.TB) []byte {
	tb.Helper()
	loadPlugin()
	Need(tb, EnvRequireWasm, plugin.err, "plugin.wasm")
	return plugin.bin
}

// PluginWasmPath is PluginWasm's file, for code that loads it itself.
func PluginWasmPath(tb testing.TB) string {
	tb.Helper()
	loadPlugin()
	Need(tb, EnvRequireWasm, plugin.err, "plugin.wasm")
	return plugin.path
}

// CompilationCache is one wazero compilation cache per test binary, so that
// each module is compiled once however many hosts a test starts.
var CompilationCache = sync.OnceValue(wazero.NewCompilationCache)

var built sync.Map // package folder -> *builtModule

type builtModule struct {
	once sync.Once
	bin  []byte
	err  error
}

// BuildWasm builds the main package in dir (relative to the test's folder)
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, once per test binary,
// and returns the module. A build failure fails the test.
func BuildWasm(tb testing.TB, dir string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	v, _ := built.LoadOrStore(abs, &builtModule{})
	m := v.(*builtModule)
	m.once.Do(func() { m.bin, m.err = buildWasm(abs) })
	if m.err != nil {
		tb.Fatal(m.err)
	}
	return m.bin
}

func buildWasm(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "testenv-wasm")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "module.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testenv: build %s for wasip1: %v\n%s", dir, err, b)
	}
	return os.ReadFile(out)
}

// SyncBuffer is a goroutine-safe buffer for captured output (logs, a
// command's stdout). With Max > 0 it keeps only about the last Max bytes.
type SyncBuffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max > 0 && s.buf.Len()+len(p) > s.Max {
		// Drop the oldest bytes, keeping half of Max (amortised copying).
		keep := s.buf.Bytes()
		if k := s.Max / 2; len(keep) > k {
			keep = keep[len(keep)-k:]
		}
		s.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return s.buf.Write(p)
}

// String is everything kept so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Tail is the last n lines kept.
func (s *SyncBuffer) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
