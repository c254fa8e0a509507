package alert

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/settings"
)

func TestChannelsFromSettings(t *testing.T) {
	s := settings.Defaults(15 * time.Minute)
	c, err := ChannelsFromSettings(s)
	require.NoError(t, err)
	assert.Empty(t, c.Names(), "nothing enabled by default")

	s.EnableEmailAlerts = true
	s.SMTP = settings.SMTP{Host: "mail.example.com", Port: 587, From: "alerts@example.com", TLS: "starttls"}
	s.AlertRecipients = []string{"ops@example.com"}
	s.EnableWebhooks = true
	s.SlackWebhookURL = "https://hooks.slack.com/services/T/B/X"
	s.DiscordWebhookURL = "https://discord.com/api/webhooks/1/abc"
	s.Webhooks = []settings.Webhook{
		{Name: "siem", URL: "https://siem.example.com/in", Secret: "k", Events: []string{EventLoginThreat}},
		{Name: "unsigned", URL: "https://x.example.com/in"},
	}
	c, err = ChannelsFromSettings(s)
	require.Error(t, err, "the unsigned webhook is reported")
	assert.Contains(t, err.Error(), "unsigned")
	assert.Equal(t, []string{"email", "webhook:slack", "webhook:discord", "webhook:siem"}, c.Names())
	assert.Equal(t, []string{"email", "webhook:slack", "webhook:discord"}, c.For(EventLoginVPN))
	assert.Contains(t, c.For(EventLoginThreat), "webhook:siem")
	_, err = c.Build()
	require.NoError(t, err)

	s.AlertRecipients = nil
	c, err = ChannelsFromSettings(s)
	require.ErrorContains(t, err, "recipient")
	assert.Nil(t, c.Email)
}

// A webhooks entry named like the slack channel (stored before Validate
// refused it) is left out and reported; the slack channel stays.
func TestChannelsFromSettingsNameClash(t *testing.T) {
	s := settings.Defaults(15 * time.Minute)
	s.EnableWebhooks = true
	s.SlackWebhookURL = "http://127.0.0.1:18999/slack"
	s.Webhooks = []settings.Webhook{{Name: "slack", URL: "http://127.0.0.1:18999/generic", Secret: "s3cret"}, {Name: "ops", URL: "https://x.example/in", Secret: "k"}}
	c, err := ChannelsFromSettings(s)
	require.ErrorContains(t, err, `webhook "slack"`)
	assert.Equal(t, []string{"webhook:slack", "webhook:ops"}, c.Names())
	assert.Equal(t, FormatSlack, c.Webhooks[0].Format)
	senders, err := c.Build()
	require.NoError(t, err)
	assert.Len(t, senders, 2)
}
