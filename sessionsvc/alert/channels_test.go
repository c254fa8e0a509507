package alert

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
