package service

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
)

// envConstants returns every string constant named Env* declared in
// sessionsvc's non-test Go files: the environment variables its parts read.
func envConstants(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Env") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out[v] = p + ": " + n.Name
					}
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestHelpListsEveryVariable: `sessionsvc --help` names every flag's
// variable and every Env* constant any sessionsvc package reads.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"--help"}, testenv.Getenv(nil), &out, io.Discard, Hooks{}))
	help := out.String()
	consts := envConstants(t)
	require.Contains(t, consts, "GEOIP_DB", "the scan finds the enrichment's variables")
	require.Contains(t, consts, "SMTP_HOST", "the scan finds the alerts' variables")
	for name, where := range consts {
		assert.Regexp(t, `(?m)\b`+regexp.QuoteMeta(name)+`\b`, help, "%s is read (%s) but --help does not list it", name, where)
	}
	var cfg Config
	for _, o := range cfg.options() {
		assert.Contains(t, help, "--"+o.flag)
		assert.Contains(t, help, o.env)
	}
	for _, g := range envOnly {
		for _, v := range g.vars {
			_, known := consts[v.name]
			assert.True(t, known, "--help documents %s, which no Env* constant declares", v.name)
		}
	}
}

// TestPortInUseBeforeToken: with the port taken, sessionsvc fails before
// generating (and printing) a development admin token.
func TestPortInUseBeforeToken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	var out bytes.Buffer
	db := "sqlite://" + filepath.Join(t.TempDir(), "p.db")
	err = Run(context.Background(), []string{"--addr", busy.Addr().String(), "--database-url", db}, testenv.Getenv(nil), &out, io.Discard, Hooks{})
	require.ErrorContains(t, err, "listen on")
	assert.NotContains(t, out.String(), "ADMIN_TOKEN", "no token printed")
	var list bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"token", "list", "--database-url", db}, testenv.Getenv(nil), &list, io.Discard, Hooks{}))
	assert.NotContains(t, list.String(), devAdminName, "no token stored")
}

func TestTokenCreateNames(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "n.db")
	env := testenv.Getenv(map[string]string{"DATABASE_URL": db})
	run := func(args ...string) error {
		return Run(context.Background(), append([]string{"token"}, args...), env, io.Discard, io.Discard, Hooks{})
	}
	require.NoError(t, run("create", "--name", "ops"))
	for _, tt := range []struct{ name, want string }{
		{"ops", "already named"},
		{"OPS", "already named"},
		{"  ops  ", "already named"},
		{"   ", "--name is required"},
		{"a\x1b[2Jb", "control"},
		{strings.Repeat("x", 101), "100"},
	} {
		assert.ErrorContains(t, run("create", "--name", tt.name), tt.want, "%q", tt.name)
	}
	require.NoError(t, run("create", "--name", "ci"), "another name")
	require.NoError(t, run("revoke", "1"))
	require.NoError(t, run("create", "--name", "ops"), "a revoked token's name is free again")
}
