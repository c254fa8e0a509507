package alert

import (
	"errors"
	"fmt"

	"github.com/meshsession/meshsession/sessionsvc/settings"
)

// ChannelsFromSettings reads the channels an admin configured in the
// settings document: email when enableEmailAlerts is on (smtp.* and
// alertRecipients), and, when enableWebhooks is on, slackWebhookUrl
// ("webhook:slack"), discordWebhookUrl ("webhook:discord") and every entry
// of webhooks (generic JSON signed with its secret, "webhook:<name>").
// Unusable entries (and a webhook whose name an earlier channel has, e.g.
// a webhooks entry named "slack" beside slackWebhookUrl) are left out and
// reported in the error; the usable ones are returned either way.
func ChannelsFromSettings(s settings.Settings) (ChannelsConfig, error) {
	var c ChannelsConfig
	var errs []error
	if s.EnableEmailAlerts && s.SMTP.Host != "" {
		sc := SMTPConfig{
			Host: s.SMTP.Host, Port: s.SMTP.Port, Username: s.SMTP.Username, Password: s.SMTP.Password,
			From: s.SMTP.From, To: s.AlertRecipients, TLS: s.SMTP.TLS,
		}
		// Keep the templates that compile; report the others (the built-in mail is used for them).
		for key, t := range s.EmailTemplates {
			tt := Template{Subject: t.Subject, Text: t.Text, HTML: t.HTML}
			if _, err := CompileTemplates(map[string]Template{key: tt}); err != nil {
				errs = append(errs, err)
				continue
			}
			if sc.Templates == nil {
				sc.Templates = map[string]Template{}
			}
			sc.Templates[key] = tt
		}
		if _, err := NewEmail(sc); err != nil {
			errs = append(errs, fmt.Errorf("email alerts: %w", err))
		} else {
			c.Email = &sc
		}
	}
	if s.EnableWebhooks {
		names := map[string]bool{}
		add := func(wc WebhookConfig) {
			if names[wc.Name] {
				// Settings saved before Validate refused the clash.
				errs = append(errs, fmt.Errorf("webhook %q: the name of another channel; left out", wc.Name))
				return
			}
			if _, err := NewWebhook(wc); err != nil {
				errs = append(errs, err)
				return
			}
			names[wc.Name] = true
			c.Webhooks = append(c.Webhooks, wc)
		}
		if s.SlackWebhookURL != "" {
			add(WebhookConfig{Name: "slack", URL: s.SlackWebhookURL, Format: FormatSlack})
		}
		if s.DiscordWebhookURL != "" {
			add(WebhookConfig{Name: "discord", URL: s.DiscordWebhookURL, Format: FormatDiscord})
		}
		for _, w := range s.Webhooks {
			add(WebhookConfig{Name: w.Name, URL: w.URL, Format: FormatJSON, Secret: w.Secret, Events: w.Events})
		}
	}
	return c, errors.Join(errs...)
}
