package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Run is sessionsvc's main: `sessionsvc [flags]` serves, `sessionsvc token
// …` manages admin tokens. It returns when ctx ends (after a graceful
// shutdown) or on a configuration error.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hooks Hooks) error {
	if len(args) > 0 && args[0] == "token" {
		return runToken(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "seed" {
		return runSeed(ctx, args[1:], getenv, stdout, stderr)
	}
	cfg, endIdleSet, rest, err := ParseConfig("sessionsvc", args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q (subcommands: token, seed)", rest)
	}
	logger := NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	// Listen first: a port in use must fail before New prints (and stores)
	// a development admin token nobody can use.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	svc, err := New(ctx, cfg, endIdleSet, hooks, logger, stdout)
	if err != nil {
		_ = ln.Close()
		return err
	}
	return svc.Serve(ctx, ln)
}

// storeFlags are the flags of a subcommand that works on the store named by
// --database-url (default: DATABASE_URL, then store.DefaultDatabaseURL).
type storeFlags struct {
	fs    *flag.FlagSet
	dbURL *string
}

func newStoreFlags(name string, stderr io.Writer) *storeFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &storeFlags{fs: fs, dbURL: fs.String("database-url", "", "database URL (default: DATABASE_URL or "+store.DefaultDatabaseURL+")")}
}

// parse reads args; help is -h/--help (the usage printed, nothing to do).
func (f *storeFlags) parse(args []string) (help bool, err error) {
	err = f.fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	return false, err
}

// open opens the store the flags name.
func (f *storeFlags) open(ctx context.Context, getenv func(string) string) (store.Store, error) {
	u := *f.dbURL
	if u == "" {
		u = getenv("DATABASE_URL")
	}
	return store.Open(ctx, u, nil)
}

func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := "usage: sessionsvc token create --name NAME | token list | token revoke ID  (uses DATABASE_URL / --database-url)"
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd := args[0]
	sf := newStoreFlags("sessionsvc token "+cmd, stderr)
	name := sf.fs.String("name", "", "name of the new token (create)")
	if help, err := sf.parse(args[1:]); help || err != nil {
		return err
	}
	st, err := sf.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	switch cmd {
	case "create":
		n := strings.TrimSpace(*name)
		if n == "" {
			return errors.New("token create: --name is required")
		}
		if len(n) > 100 || strings.IndexFunc(n, unicode.IsControl) >= 0 {
			return errors.New("token create: --name: at most 100 characters, no control characters")
		}
		// Names tell tokens apart in `token list` and the dashboard: refuse
		// one a live token already has (a revoked token's name is free).
		existing, err := st.ListAdminTokens(ctx)
		if err != nil {
			return fmt.Errorf("token create: %w", err)
		}
		for _, t := range existing {
			if !t.Revoked && strings.EqualFold(t.Name, n) {
				return fmt.Errorf("token create: token %d is already named %q (revoke it first, or choose another name)", t.ID, t.Name)
			}
		}
		*name = n
		tok, err := randomToken("mss_")
		if err != nil {
			return err
		}
		t, err := st.CreateAdminToken(ctx, *name, server.HashAdminToken(tok), time.Now().UTC())
		if err != nil {
			return fmt.Errorf("token create: %w", err)
		}
		auditCLI(ctx, st, server.AuditTokenCreated, strconv.FormatInt(t.ID, 10), map[string]any{"name": t.Name})
		fmt.Fprintf(stdout, "created admin token %d (%s); it is shown only once:\n%s\n", t.ID, t.Name, tok)
		return nil
	case "list":
		list, err := st.ListAdminTokens(ctx)
		if err != nil {
			return fmt.Errorf("token list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tREVOKED")
		for _, t := range list {
			used := "never"
			if t.LastUsed != nil {
				used = t.LastUsed.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339), used, t.Revoked)
		}
		return tw.Flush()
	case "revoke":
		if sf.fs.NArg() != 1 {
			return errors.New("token revoke: give exactly one token ID (see token list)")
		}
		id, err := strconv.ParseInt(sf.fs.Arg(0), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("token revoke: %q is not a token ID", sf.fs.Arg(0))
		}
		if err := st.RevokeAdminToken(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("token revoke: no token with ID %d", id)
			}
			return fmt.Errorf("token revoke: %w", err)
		}
		auditCLI(ctx, st, server.AuditTokenRevoked, strconv.FormatInt(id, 10), nil)
		fmt.Fprintf(stdout, "revoked admin token %d\n", id)
		return nil
	default:
		return errors.New(usage)
	}
}
