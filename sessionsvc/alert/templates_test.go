package alert

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

func TestCustomTemplates(t *testing.T) {
	ms := startMailServer(t, false)
	cfg := ms.config()
	cfg.Templates = map[string]Template{
		"suspiciousLogin": {
			Subject: "Careful: {{.UserID}} from {{.Geo.City}}",
			Text:    "Score {{.Score}} for {{.UserID}}\n{{range .Reasons}}- {{.}}\n{{end}}",
			HTML:    "<p>{{.UserID}} scored {{.Score}}: {{index .Reasons 1}}</p>",
		},
		EventLoginVPN: {Subject: "{{.Nope.Field}}"}, // fails at execution: built-in subject
	}
	e, err := NewEmail(cfg)
	require.NoError(t, err)
	var tmplErrs []string
	e.OnTemplateError = func(ev string, err error) { tmplErrs = append(tmplErrs, ev+": "+err.Error()) }

	require.NoError(t, e.Send(context.Background(), store.Alert{ID: 1}, samplePayload()))
	p := samplePayload()
	p.Event = EventLoginVPN
	require.NoError(t, e.Send(context.Background(), store.Alert{ID: 2}, p))

	got := ms.received()
	require.Len(t, got, 2)
	subject, text, html, _ := parseMail(t, got[0].Data)
	assert.Equal(t, "Careful: alice from London", subject)
	assert.Contains(t, text, "Score 45 for alice")
	assert.Contains(t, text, "- new country GB")
	assert.Contains(t, html, "&lt;script&gt;", "html/template escapes")

	subject, _, _, _ = parseMail(t, got[1].Data)
	assert.Equal(t, "[meshsession] Anmeldung über VPN, Proxy oder Tor: alice", subject, "fallback to built-in")
	require.Len(t, tmplErrs, 1)
	assert.Contains(t, tmplErrs[0], EventLoginVPN)
}

func TestCompileTemplatesRejects(t *testing.T) {
	_, err := CompileTemplates(map[string]Template{"login.party": {Subject: "x"}})
	assert.ErrorContains(t, err, "unknown event")
	_, err = CompileTemplates(map[string]Template{"newLocation": {HTML: "{{.UserID"}})
	assert.ErrorContains(t, err, "newLocation")
	_, err = NewEmail(SMTPConfig{Host: "h", From: "a@example.com", To: []string{"b@example.com"}, Templates: map[string]Template{"vpnProxy": {Text: "{{"}}})
	assert.Error(t, err)
}

// TestTemplateRangesBounded: a template whose range could loop without
// bound (over a number, a call, a bare variable) is refused when saved; a
// range over the alert's fields compiles.
func TestTemplateRangesBounded(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		ok        bool
	}{
		{"over a field", `{{range .Message.Fields}}{{.}}{{end}}`, true},
		{"over a field with variables", `{{range $i, $f := .Message.Fields}}{{$i}}{{end}}`, true},
		{"over $.field", `{{range $.Message.Fields}}x{{end}}`, true},
		{"nested in if and with", `{{if .UserID}}{{with .Message}}{{range .Fields}}x{{end}}{{end}}{{end}}`, true},
		{"over a number", `{{range 3000000000}}{{end}}`, false},
		{"over len of a literal", `{{range len "aaaaaaaa"}}{{end}}`, false},
		{"over a bare variable", `{{$n := 3000000000}}{{range $n}}{{end}}`, false},
		{"in a defined template", `{{define "x"}}{{range 5}}{{end}}{{end}}{{template "x"}}`, false},
		{"in an else", `{{if .UserID}}{{else}}{{range 5}}{{end}}{{end}}`, false},
	} {
		for _, part := range []string{"text", "html"} {
			tpl := Template{Text: tc.src}
			if part == "html" {
				tpl = Template{HTML: tc.src}
			}
			_, err := CompileTemplates(map[string]Template{EventLoginSuccess: tpl})
			if tc.ok {
				assert.NoError(t, err, "%s (%s)", tc.name, part)
			} else {
				assert.ErrorIs(t, err, errUnboundedRange, "%s (%s)", tc.name, part)
			}
		}
	}
}

func TestTemplateOutputBounded(t *testing.T) {
	ts, err := CompileTemplates(map[string]Template{EventLoginSuccess: {Text: `{{range $i, $e := .Message.Fields}}` + strings.Repeat("x", 1000) + `{{end}}` + strings.Repeat("{{.Message.HTML}}", 1000)}})
	require.NoError(t, err)
	_, text, _, errs := ts.render(Payload{Event: EventLoginSuccess, UserID: "u"})
	require.NotEmpty(t, errs)
	assert.Less(t, len(text), maxTemplateOutput, "built-in text used")
}

func TestSettingsTemplates(t *testing.T) {
	s := settings.Defaults(15 * time.Minute)
	s.EnableEmailAlerts = true
	s.SMTP = settings.SMTP{Host: "mail.example.com", From: "a@example.com"}
	s.AlertRecipients = []string{"b@example.com"}
	s.EmailTemplates = map[string]settings.EmailTemplate{
		"suspiciousLogin": {Subject: "S {{.UserID}}"},
		"newLocation":     {Subject: "{{"},
	}
	c, err := ChannelsFromSettings(s)
	require.ErrorContains(t, err, "newLocation")
	require.NotNil(t, c.Email, "a bad template does not turn email off")
	assert.Contains(t, c.Email.Templates, "suspiciousLogin")
	assert.NotContains(t, c.Email.Templates, "newLocation")
}

// A template stored by the Strapi plugin's admin UI (its placeholder
// syntax, services/notifications.js) renders with the alert's values
// instead of failing to parse and falling back to the built-in mail.
func TestUpstreamTemplateRenders(t *testing.T) {
	ts, err := CompileTemplates(map[string]Template{"suspiciousLogin": {
		Subject: "[ALERT] Suspicious login for {{user.email}}",
		HTML: `<ul><li>{{user.email}} / {{ user.username }}</li><li>{{session.loginTime}} {{session.ipAddress}} {{session.userAgent}}</li>` +
			`<li>{{geo.city}}, {{geo.country}} ({{geo.timezone}})</li>` +
			`<li>VPN {{reason.isVpn}} Proxy {{reason.isProxy}} Threat {{reason.isThreat}} Score {{reason.securityScore}}/100</li>{{unknown.var}}</ul>`,
		Text: "Account: {{user.email}}\nLocation: {{geo.city}}, {{geo.country}}\nVPN={{reason.isVpn}}",
	}})
	require.NoError(t, err)
	p := samplePayload()
	p.Email, p.Username, p.UserAgent, p.IsVPN = "alice@example.com", `<b>al"ice</b>`, "Mozilla/5.0", true
	subject, text, html, errs := ts.render(p)
	require.Empty(t, errs)
	assert.Equal(t, "[ALERT] Suspicious login for alice@example.com", subject)
	assert.Equal(t, "Account: alice@example.com\nLocation: London, United Kingdom\nVPN=Yes", text)
	for _, want := range []string{"alice@example.com / &lt;b&gt;al&#34;ice&lt;/b&gt;", "2026-03-01 12:00:00 UTC 81.2.69.142 Mozilla/5.0",
		"London, United Kingdom (Unknown)", "VPN Yes Proxy No Threat No Score 45/100", "{{unknown.var}}"} {
		assert.Contains(t, html, want)
	}

	// Missing values take the plugin's fallbacks.
	_, text, _, _ = ts.render(Payload{Event: EventLoginSuspicious})
	assert.Equal(t, "Account: N/A\nLocation: Unknown, Unknown\nVPN=No", text)
}
