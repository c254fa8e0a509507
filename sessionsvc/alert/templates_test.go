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
