package settings

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestSaveLoadSealsSecrets(t *testing.T) {
	st := storetest.OpenSQLite(t)
	kr, err := secrets.ParseKeyring(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	require.NoError(t, err)
	ctx := context.Background()

	s, err := Load(ctx, st, kr, 20*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 20, s.InactivityTimeout, "defaults follow the service's inactivity timeout")

	s, err = Merge(s, []byte(`{"smtp":{"host":"mail.example","password":"hunter2"},"webhooks":[{"name":"ops","url":"https://hooks.example/x?token=abc","secret":"whsec"}]}`))
	require.NoError(t, err)
	require.NoError(t, Save(ctx, st, kr, s))

	raw, err := st.GetSettings(ctx)
	require.NoError(t, err)
	for _, clear := range []string{"hunter2", "whsec", "token=abc"} {
		assert.NotContains(t, string(raw), clear, "secrets are sealed at rest")
	}
	loaded, err := Load(ctx, st, kr, 20*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, "hunter2", loaded.SMTP.Password)
	assert.Equal(t, "whsec", loaded.Webhooks[0].Secret)

	m := loaded.Masked()
	assert.Equal(t, Mask, m.SMTP.Password)
	assert.Equal(t, Mask, m.Webhooks[0].URL)
	assert.Equal(t, "hunter2", loaded.SMTP.Password, "masking copies")

	// Sending the mask back keeps the secret.
	again, err := Merge(loaded, []byte(`{"smtp":{"host":"mail2.example","password":"********"},"webhooks":[{"name":"ops","url":"********","secret":"********"}]}`))
	require.NoError(t, err)
	assert.Equal(t, "hunter2", again.SMTP.Password)
	assert.Equal(t, "whsec", again.Webhooks[0].Secret)
	assert.Equal(t, "mail2.example", again.SMTP.Host)

	// No key: refusing to store a secret in the clear.
	err = Save(ctx, st, &secrets.Keyring{}, again)
	assert.ErrorIs(t, err, ErrNoEncryptionKey)
}

func TestMergeAndValidate(t *testing.T) {
	d := Defaults(15 * time.Minute)
	cases := []struct {
		name, body, wantErr string
	}{
		{"unknown field", `{"bogus":1}`, "unknown field"},
		{"wrong type", `{"retentionDays":"x"}`, "cannot unmarshal"},
		{"trailing", `{} {}`, "unexpected data"},
		{"bad retention", `{"retentionDays":0}`, "retentionDays"},
		{"keep forever", `{"retentionDays":-1}`, ""},
		{"bad country", `{"blockedCountries":["germany"]}`, "ISO 3166"},
		{"bad webhook", `{"webhooks":[{"name":"a","url":"ftp://x"}]}`, "webhooks[0].url"},
		{"bad email", `{"alertRecipients":["nope"]}`, "alertRecipients"},
		{"webhook named like the slack channel", `{"slackWebhookUrl":"https://hooks.slack.com/services/x","webhooks":[{"name":"slack","url":"https://x.example/in","secret":"s"}]}`,
			`webhooks[0].name: "slack" is the channel of slackWebhookUrl`},
		{"webhook named like the discord channel", `{"discordWebhookUrl":"https://discord.com/api/webhooks/1/x","webhooks":[{"name":"discord","url":"https://x.example/in","secret":"s"}]}`,
			`webhooks[0].name: "discord" is the channel of discordWebhookUrl`},
		{"slack name free without a slack URL", `{"webhooks":[{"name":"slack","url":"https://x.example/in","secret":"s"}]}`, ""},
		{"webhook names twice", `{"webhooks":[{"name":"a","url":"https://x.example/in"},{"name":"a","url":"https://y.example/in"}]}`, "webhooks[1].name: must be set and unique"},
		{"slack URL off the allowlist", `{"slackWebhookUrl":"http://127.0.0.1:18999/slack"}`, "slackWebhookUrl: must be an https URL on hooks.slack.com"},
		{"discord URL off the allowlist", `{"discordWebhookUrl":"https://evil.example/discord.com"}`, "discordWebhookUrl: must be an https URL on discord.com"},
		{"slack URL on the allowlist", `{"slackWebhookUrl":"https://hooks.slack.com/services/x"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Merge(d, []byte(tc.body))
			if err == nil {
				err = s.Validate()
			}
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.wantErr), err.Error())
		})
	}
}
