package service

import (
	"fmt"
	"io"
)

// envDoc documents an environment variable read outside ParseConfig (by
// the enrichment, policy and alert parts wired in by main's hooks), so that
// --help lists every variable sessionsvc reads. A test checks this list
// against every Env* constant under sessionsvc/.
type envDoc struct{ name, def, help string }

var envOnly = []struct {
	group string
	vars  []envDoc
}{
	{"Login enrichment (files reloaded when they change)", []envDoc{
		{"GEOIP_DB", "", "MaxMind-format .mmdb (City or Country) locating login addresses"},
		{"IPREP_TOR_FILE", "", "Tor exit addresses (addresses, CIDRs or ranges, one per line)"},
		{"IPREP_VPN_FILE", "", "VPN ranges"},
		{"IPREP_PROXY_FILE", "", "proxy ranges"},
		{"IPREP_DATACENTER_FILE", "", "hosting/datacenter ranges"},
		{"IPREP_THREAT_FILE", "", "known threat addresses"},
		{"ENRICH_RELOAD_INTERVAL", "30s", "how often the files above are checked for changes"},
	}},
	{"Login policy", []envDoc{
		{"SECURITY_POLICY_FILE", "", "JSON login policy (score weights, geofencing, lockout, alerts) under the admin settings"},
		{"SECURITY_POLICY_REFRESH", "2s", "how often the effective policy is re-read"},
	}},
	{"Alerts (durable outbox)", []envDoc{
		{"ALERT_MAX_ATTEMPTS", "8", "tries before an alert is dead-lettered (1..100)"},
		{"SMTP_HOST", "", "email alerts: SMTP server (email is off when empty)"},
		{"SMTP_PORT", "587", "SMTP port"},
		{"SMTP_USER", "", "SMTP user"},
		{"SMTP_PASSWORD", "", "SMTP password"},
		{"SMTP_FROM", "", "sender address"},
		{"SMTP_TLS", "starttls", "starttls, starttls-required, tls or none"},
		{"ALERT_EMAIL_TO", "", "comma-separated recipients"},
		{"WEBHOOK_URL", "", "webhook alerts: endpoint (off when empty)"},
		{"WEBHOOK_FORMAT", "json", "json, slack or discord"},
		{"WEBHOOK_SECRET", "", "signs json webhooks: X-Meshsession-Signature: t=<unix>,v1=<hex HMAC-SHA256>"},
		{"WEBHOOK_NAME", "default", "the webhook's name in the dashboard"},
	}},
}

// printEnvOnly writes the environment-only variables for --help.
func printEnvOnly(w io.Writer) {
	fmt.Fprintf(w, "\nEnvironment only (default):\n")
	for _, g := range envOnly {
		fmt.Fprintf(w, "  %s:\n", g.group)
		for _, v := range g.vars {
			def := v.def
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(w, "    %-24s (default %s)\n        %s\n", v.name, def, v.help)
		}
	}
}
