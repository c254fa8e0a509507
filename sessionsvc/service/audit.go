package service

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// auditCLI records an admin-token change made with the sessionsvc CLI in
// the audit trail (actor "cli:<os user>"); a failure is reported on
// stderr, the change itself stands.
func auditCLI(ctx context.Context, st store.Audit, event, tokenID string, detail map[string]any) {
	actor := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		actor = "cli:" + u.Username
	}
	if detail == nil {
		detail = map[string]any{}
	}
	if h, err := os.Hostname(); err == nil {
		detail["host"] = h
	}
	b, _ := json.Marshal(detail)
	if err := st.AppendAudit(ctx, []store.AuditEvent{{At: time.Now().UTC(), Event: event, SubjectKind: "token", Subject: tokenID,
		Actor: actor, Detail: b}}); err != nil {
		fmt.Fprintf(os.Stderr, "warning: recording %s in the audit trail failed: %v\n", event, err)
	}
}
