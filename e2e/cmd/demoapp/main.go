// Command demoapp runs the demo application (a stand-in for a Strapi v5 app)
// that meshsession protects in `make run` and docker compose.
//
// Flags override environment variables:
//
//	-addr         DEMOAPP_ADDR   listen address          (default ":3000")
//	-secret       JWT_SECRET     HS256 signing secret    (default "meshsession-demo-secret")
//	-issuer       JWT_ISSUER     "iss" claim of tokens   (default none)
//	-token-ttl    TOKEN_TTL      access-token lifetime   (default 30m)
//	-refresh-ttl  REFRESH_TTL    refresh-token lifetime  (default 168h)
//	-sid          DEMO_SID       add a "sid" claim       (default true)
//	-log-level    LOG_LEVEL      debug|info|warn|error   (default info)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/meshsession/meshsession/e2e/demoapp"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		os.Exit(1)
	}
}

type options struct {
	addr       string
	secret     string
	issuer     string
	tokenTTL   time.Duration
	refreshTTL time.Duration
	sid        bool
	logLevel   slog.Level
}

// parseOptions reads flags over environment defaults.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	def := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var o options
	var err error
	if o.tokenTTL, err = time.ParseDuration(def("TOKEN_TTL", demoapp.DefaultTokenTTL.String())); err != nil {
		return o, fmt.Errorf("TOKEN_TTL: %w", err)
	}
	if o.refreshTTL, err = time.ParseDuration(def("REFRESH_TTL", demoapp.DefaultRefreshTTL.String())); err != nil {
		return o, fmt.Errorf("REFRESH_TTL: %w", err)
	}
	if o.sid, err = strconv.ParseBool(def("DEMO_SID", "true")); err != nil {
		return o, fmt.Errorf("DEMO_SID: %w", err)
	}
	if err = o.logLevel.UnmarshalText([]byte(def("LOG_LEVEL", "info"))); err != nil {
		return o, fmt.Errorf("LOG_LEVEL: %w", err)
	}

	fs := flag.NewFlagSet("demoapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", def("DEMOAPP_ADDR", ":3000"), "listen address (DEMOAPP_ADDR)")
	fs.StringVar(&o.secret, "secret", def("JWT_SECRET", demoapp.DefaultSecret), "HS256 secret for access tokens (JWT_SECRET)")
	fs.StringVar(&o.issuer, "issuer", def("JWT_ISSUER", ""), `"iss" claim of access tokens (JWT_ISSUER; none when empty)`)
	fs.DurationVar(&o.tokenTTL, "token-ttl", o.tokenTTL, "access-token lifetime (TOKEN_TTL)")
	fs.DurationVar(&o.refreshTTL, "refresh-ttl", o.refreshTTL, "refresh-token lifetime (REFRESH_TTL)")
	fs.BoolVar(&o.sid, "sid", o.sid, `add a "sid" claim to access tokens (DEMO_SID)`)
	fs.TextVar(&o.logLevel, "log-level", o.logLevel, "log level: debug, info, warn, error (LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.tokenTTL <= 0 || o.refreshTTL <= 0 {
		return o, errors.New("token-ttl and refresh-ttl must be positive")
	}
	if o.secret == "" {
		return o, errors.New("secret must not be empty")
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))

	app := demoapp.New(demoapp.Config{
		Secret:     o.secret,
		Issuer:     o.issuer,
		TokenTTL:   o.tokenTTL,
		RefreshTTL: o.refreshTTL,
		SIDClaim:   o.sid,
		Logger:     log,
	})
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("demoapp listening", "addr", ln.Addr().String(), "sid_claim", o.sid,
		"token_ttl", o.tokenTTL.String(), "users", "alice, bob, carol (password <name>-password)")
	return app.Serve(ctx, ln)
}
