// Command sessionsvc is meshsession's companion service: sessions on SQLite
// or PostgreSQL, the proxy plugin's internal API, and the user and admin
// APIs. Run `sessionsvc --help` for its flags and environment variables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshsession/meshsession/sessionsvc/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, service.Hooks{}); err != nil {
		fmt.Fprintln(os.Stderr, "sessionsvc:", err)
		os.Exit(1)
	}
}
