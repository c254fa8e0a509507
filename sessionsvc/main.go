// Command sessionsvc is meshsession's companion service: sessions on SQLite
// or PostgreSQL, the proxy plugin's internal API, the user and admin APIs,
// login enrichment and alerts, and the admin dashboard. Run `sessionsvc
// --help` for its flags and environment variables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshsession/meshsession/sessionsvc/dashboard"
	"github.com/meshsession/meshsession/sessionsvc/enrich/wire"
	"github.com/meshsession/meshsession/sessionsvc/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hooks := wire.Hooks(os.Getenv, dashboard.Mounts)
	if err := service.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, hooks); err != nil {
		fmt.Fprintln(os.Stderr, "sessionsvc:", err)
		os.Exit(1)
	}
}
