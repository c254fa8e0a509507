package alert

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChannelsForAndOverride(t *testing.T) {
	env := ChannelsConfig{
		Email:    &SMTPConfig{Host: "env"},
		Webhooks: []WebhookConfig{{Name: "default"}, {Name: "ops", Events: []string{EventLoginThreat}}},
	}
	assert.Equal(t, []string{"email", "webhook:default", "webhook:ops"}, env.For(EventLoginThreat))
	assert.Equal(t, []string{"email", "webhook:default"}, env.For(EventLoginVPN))

	merged := env.Override(ChannelsConfig{Webhooks: []WebhookConfig{{Name: "ops"}, {Name: "slack", Events: []string{EventUserBlocked}}}})
	assert.Equal(t, "env", merged.Email.Host)
	assert.Equal(t, []string{"email", "webhook:default", "webhook:ops"}, merged.For(EventLoginVPN), "ops now takes every event")
	assert.Equal(t, []string{"email", "webhook:default", "webhook:ops", "webhook:slack"}, merged.For(EventUserBlocked))
	assert.Equal(t, "settings", env.Override(ChannelsConfig{Email: &SMTPConfig{Host: "settings"}}).Email.Host)
}

// One channel that cannot be built does not take the others down.
func TestBuildKeepsTheUsableChannels(t *testing.T) {
	c := ChannelsConfig{
		Email: &SMTPConfig{Host: "mail.example", From: "alerts@example.com", To: []string{"ops@example.com"}},
		Webhooks: []WebhookConfig{
			{Name: "slack", URL: "http://127.0.0.1:18999/slack", Format: FormatSlack},
			{Name: "slack", URL: "http://127.0.0.1:18999/generic", Secret: "s3cret"},
			{Name: "broken", URL: "ftp://x"},
			{Name: "default", URL: "http://127.0.0.1:18999/env", Format: FormatDiscord},
		},
	}
	s, err := c.Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "webhook:slack: name used twice")
	assert.Contains(t, err.Error(), "broken")
	assert.ElementsMatch(t, []string{"email", "webhook:slack", "webhook:default"}, slices.Collect(maps.Keys(s)))
	assert.Equal(t, FormatSlack, s["webhook:slack"].(*Webhook).cfg.Format, "the first of a name is kept")

	c.Email.To = nil // no recipient
	s, err = c.Build()
	require.ErrorContains(t, err, "email alerts")
	assert.NotContains(t, s, "email")
	assert.Contains(t, s, "webhook:default")
}
