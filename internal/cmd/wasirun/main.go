// Command wasirun runs a GOOS=wasip1 GOARCH=wasm program (typically a test
// binary) on wazero, the runtime the project's Envoy-like host uses, so that
// code built only for Wasm (e.g. plugin/core's unsafe fast paths) is tested
// where it runs:
//
//	GOOS=wasip1 GOARCH=wasm go test -exec "$PWD/.build/wasirun" ./plugin/core/...
//
// The program sees the host's environment, its working directory and the
// whole file system mounted at / (tests read testdata), the real clocks and
// crypto/rand. wasirun exits with the program's exit code. Compiled code is
// cached under $WASIRUN_CACHE (default: the user cache folder), so a test
// binary is compiled to machine code once per build.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wasirun program.wasm [args...]")
		os.Exit(2)
	}
	code, err := run(context.Background(), os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasirun:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, path string, args []string) (int, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return 1, err
	}
	rc := wazero.NewRuntimeConfig()
	if dir := cacheDir(); dir != "" {
		if cache, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
			rc = rc.WithCompilationCache(cache)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)

	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{filepath.Base(path)}, args...)...).
		WithStdin(os.Stdin).WithStdout(os.Stdout).WithStderr(os.Stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithFSConfig(wazero.NewFSConfig().WithDirMount("/", "/"))
	env := os.Environ()
	if wd, err := os.Getwd(); err == nil {
		env = append(env, "PWD="+wd) // Go's wasip1 runtime resolves relative paths against $PWD
	}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			cfg = cfg.WithEnv(k, v)
		}
	}
	_, err = rt.InstantiateWithConfig(ctx, bin, cfg)
	var exit *sys.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		return int(exit.ExitCode()), nil
	default:
		return 1, fmt.Errorf("run %s: %w", path, err)
	}
}

func cacheDir() string {
	if d := os.Getenv("WASIRUN_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "meshsession-wasirun")
	}
	return ""
}
