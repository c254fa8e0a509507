// Command wasmbuild builds plugin.wasm with the standard Go toolchain.
//
// The proxy-wasm-go-sdk v0.24.0 declares its host calls for TinyGo only. This
// command makes a working copy of the SDK under .build/ (cmd/go refuses
// overlays of files in the module cache), points a build-only go.mod at it,
// and builds ./plugin for GOOS=wasip1 GOARCH=wasm -buildmode=c-shared with an
// overlay that removes the SDK's mock host calls and adds this repository's
// glue from plugin/_sdkglue. It then rewrites the module so that it no
// longer imports poll_oneoff (see plugin/wasmpatch) and writes plugin.wasm.
//
//	go run ./plugin/cmd/wasmbuild [-o plugin.wasm] [-work .build] [-names]
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/meshsession/meshsession/plugin/wasmpatch"
)

const sdkModule = "github.com/tetratelabs/proxy-wasm-go-sdk"

// sdkVersion is the SDK release the glue is written against: it replaces
// that release's internal host calls and reaches into its unexported state
// (plugin/_sdkglue/README.md), so any other version is refused.
const sdkVersion = "v0.24.0"

// glue maps files of plugin/_sdkglue to the paths (relative to the SDK's
// proxywasm folder) they take in the SDK: its internal package, and for the
// allocation-free calls the filter uses, its public proxywasm package.
var glue = map[string]string{
	"hostcalls_wasip1.go": "internal/zz_meshsession_hostcalls_wasip1.go",
	"exports_wasip1.go":   "internal/zz_meshsession_exports_wasip1.go",
	"contexts_wasip1.go":  "internal/zz_meshsession_contexts_wasip1.go",
	"view_wasip1.go":      "zz_meshsession_view_wasip1.go",
	"runas_wasip1.go":     "zz_meshsession_runas_wasip1.go",
}

func main() {
	out := flag.String("o", "plugin.wasm", "output file")
	work := flag.String("work", ".build", "working folder (ignored by git)")
	keepPoll := flag.Bool("keep-poll-oneoff", false, "skip the WASI import rewrite (diagnostics only: the result may not load or survive on Envoy)")
	names := flag.Bool("names", false, "keep the name section (function names for profilers, e.g. perf with wazero built -tags perfmap; see README.md)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := build(ctx, *out, *work, *keepPoll, *names); err != nil {
		fmt.Fprintln(os.Stderr, "wasmbuild:", err)
		os.Exit(1)
	}
}

func build(ctx context.Context, out, work string, keepPoll, names bool) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(work) {
		work = filepath.Join(root, work)
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}

	mod, err := goOutput(ctx, root, nil, "list", "-m", "-f", sdkListFormat, sdkModule)
	if err != nil {
		return fmt.Errorf("read the version of %s in go.mod: %w", sdkModule, err)
	}
	if err := checkSDK(mod); err != nil {
		return err
	}
	sdkSrc, err := goOutput(ctx, root, nil, "list", "-m", "-f", "{{.Dir}}", sdkModule)
	if err != nil {
		return fmt.Errorf("locate %s (run 'go mod download'): %w", sdkModule, err)
	}
	if sdkSrc == "" {
		if _, err := goOutput(ctx, root, nil, "mod", "download", sdkModule); err != nil {
			return fmt.Errorf("download %s: %w", sdkModule, err)
		}
		if sdkSrc, err = goOutput(ctx, root, nil, "list", "-m", "-f", "{{.Dir}}", sdkModule); err != nil || sdkSrc == "" {
			return fmt.Errorf("locate %s after download: %v", sdkModule, err)
		}
	}
	sdk := filepath.Join(work, "sdk")
	if err := os.RemoveAll(sdk); err != nil {
		return fmt.Errorf("clean %s: %w", sdk, err)
	}
	if err := copyTree(sdkSrc, sdk); err != nil {
		return fmt.Errorf("copy SDK: %w", err)
	}

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return fmt.Errorf("read go.mod: %w", err)
	}
	modfile := filepath.Join(work, "wasm.mod")
	gomod = append(gomod, fmt.Sprintf("\nreplace %s => %s\n", sdkModule, sdk)...)
	if err := os.WriteFile(modfile, gomod, 0o644); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, "go.sum"), filepath.Join(work, "wasm.sum")); err != nil {
		return fmt.Errorf("copy go.sum: %w", err)
	}

	pkg := filepath.Join(sdk, "proxywasm")
	overlay := map[string]string{filepath.Join(pkg, "internal", "abi_hostcalls_mock.go"): ""}
	for src, dst := range glue {
		overlay[filepath.Join(pkg, filepath.FromSlash(dst))] = filepath.Join(root, "plugin", "_sdkglue", src)
	}
	ov, err := json.MarshalIndent(map[string]any{"Replace": overlay}, "", "  ")
	if err != nil {
		return err
	}
	overlayFile := filepath.Join(work, "overlay.json")
	if err := os.WriteFile(overlayFile, ov, 0o644); err != nil {
		return err
	}

	raw := filepath.Join(work, "plugin.raw.wasm")
	env := []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}
	fmt.Fprintf(os.Stderr, "wasmbuild: go build (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared) ./plugin\n")
	ldflags := "-ldflags=-s -w"
	if names {
		ldflags = "-ldflags=-w" // -s drops the name section
	}
	if _, err := goOutput(ctx, root, env, "build", "-modfile", modfile, "-overlay", overlayFile,
		"-buildmode=c-shared", "-trimpath", "-buildvcs=false", ldflags, "-o", raw, "./plugin"); err != nil {
		return err
	}
	module, err := os.ReadFile(raw)
	if err != nil {
		return err
	}
	if !keepPoll {
		var rep wasmpatch.Report
		module, rep, err = wasmpatch.Rewrite(module)
		if err != nil {
			return fmt.Errorf("rewrite WASI imports: %w", err)
		}
		fmt.Fprintf(os.Stderr, "wasmbuild: poll_oneoff replaced by an internal no-event poll; WASI imports Envoy lacks, now ENOSYS: %v\n", rep.Stubbed)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, module, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	sum := sha256.Sum256(module)
	rel, _ := filepath.Rel(root, out)
	fmt.Printf("wasmbuild: %s: %d bytes (%.2f MiB), sha256 %s\n", rel, len(module), float64(len(module))/(1<<20), hex.EncodeToString(sum[:]))
	return nil
}

// sdkListFormat is the `go list -m -f` template checkSDK reads.
const sdkListFormat = "{{.Version}}|{{with .Replace}}{{.Path}} {{.Version}}{{end}}"

// checkSDK refuses any SDK but sdkVersion, unreplaced.
func checkSDK(listed string) error {
	version, replace, _ := strings.Cut(strings.TrimSpace(listed), "|")
	switch {
	case replace != "":
		return fmt.Errorf("go.mod replaces %s with %s: the glue in plugin/_sdkglue is written against the released %s %s only; remove the replace directive", sdkModule, replace, sdkModule, sdkVersion)
	case version != sdkVersion:
		return fmt.Errorf("go.mod requires %s %s, but the glue in plugin/_sdkglue is written against %s and reaches into its internals: pin %s (go get %s@%s) or port the glue to %s and update sdkVersion in plugin/cmd/wasmbuild", sdkModule, version, sdkVersion, sdkVersion, sdkModule, sdkVersion, version)
	}
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	gomod, err := goOutput(ctx, ".", nil, "env", "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the meshsession module (no go.mod)")
	}
	return filepath.Dir(gomod), nil
}

// goOutput runs the go command and returns its trimmed standard output; its
// standard error is shown on failure.
func goOutput(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// copyTree copies a module from the (read-only) module cache into a writable folder.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	outf, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(outf, in); err != nil {
		outf.Close()
		return err
	}
	return outf.Close()
}
