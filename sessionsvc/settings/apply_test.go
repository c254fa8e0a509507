package settings

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyAsUpstream(t *testing.T) {
	cur := Defaults(15 * time.Minute)
	cur.SMTP.Host = "mail.example"
	cur.SMTP.Password = "p"
	cur.DiscordWebhookURL = "https://discord.com/api/webhooks/1/old"
	cur.SlackWebhookURL = "http://127.0.0.1:18999/slack"
	cases := []struct {
		name    string
		body    string
		check   func(t *testing.T, s Settings)
		ignored []string
	}{
		{"empty object: the plugin's absent values", `{}`, func(t *testing.T, s Settings) {
			assert.Equal(t, 15, s.InactivityTimeout)
			assert.Equal(t, 30, s.CleanupInterval)
			assert.Equal(t, 5000, s.SessionCreationGraceMs)
			assert.False(t, s.EnableGeolocation, "!!undefined")
			assert.Equal(t, "", s.DiscordWebhookURL, "replaced, not merged")
			assert.Equal(t, "mail.example", s.SMTP.Host, "our keys kept when left out")
			assert.Equal(t, []string{}, s.BlockedCountries)
			assert.Len(t, s.EmailTemplates, 3)
		}, nil},
		{"lenient numbers and clamps", `{"inactivityTimeout":"99999","cleanupInterval":2,"lastSeenRateLimit":"12s","maxSessionAgeDays":7.9,"sessionCreationGraceMs":0,"maxFailedLogins":0,"rateLimitWriteMax":-4,"retentionDays":-1}`,
			func(t *testing.T, s Settings) {
				assert.Equal(t, 1440, s.InactivityTimeout)
				assert.Equal(t, 5, s.CleanupInterval)
				assert.Equal(t, 12, s.LastSeenRateLimit)
				assert.Equal(t, 7, s.MaxSessionAgeDays)
				assert.Equal(t, 0, s.SessionCreationGraceMs, "an explicit 0 disables the grace")
				assert.Equal(t, 0, s.MaxFailedLogins)
				assert.Equal(t, 1, s.RateLimitWriteMax)
				assert.Equal(t, -1, s.RetentionDays)
			}, nil},
		{"zero falls back as parseInt || default", `{"inactivityTimeout":0,"retentionDays":0,"rateLimitReadMax":"x"}`, func(t *testing.T, s Settings) {
			assert.Equal(t, 15, s.InactivityTimeout)
			assert.Equal(t, 1, s.RetentionDays, "0 clamps to 1 (only -1 is forever)")
			assert.Equal(t, 120, s.RateLimitReadMax)
		}, nil},
		{"webhooks", `{"discordWebhookUrl":"https://evil.example/discord.com","slackWebhookUrl":"https://hooks.slack.com/services/x"}`, func(t *testing.T, s Settings) {
			assert.Equal(t, "", s.DiscordWebhookURL)
			assert.Equal(t, "https://hooks.slack.com/services/x", s.SlackWebhookURL)
		}, nil},
		{"masked webhook kept", `{"discordWebhookUrl":"********"}`, func(t *testing.T, s Settings) {
			assert.Equal(t, "https://discord.com/api/webhooks/1/old", s.DiscordWebhookURL)
		}, nil},
		{"masked webhook off the allowlist dropped", `{"slackWebhookUrl":"********"}`, func(t *testing.T, s Settings) {
			assert.Equal(t, "", s.SlackWebhookURL, "stored before the allowlist applied to both paths")
		}, nil},
		{"countries and enums", `{"allowedCountries":["de"," fr ","DE",7,"XXX"],"geoIpProvider":"nope","geoLookupFailureMode":"block"}`, func(t *testing.T, s Settings) {
			assert.Equal(t, []string{"DE", "FR"}, s.AllowedCountries)
			assert.Equal(t, "auto", s.GeoIPProvider)
			assert.Equal(t, "block", s.GeoLookupFailureMode)
		}, nil},
		{"truthiness", `{"enableGeolocation":"yes","enableWebhooks":0,"trustedProxies":[],"enableEmailAlerts":""}`, func(t *testing.T, s Settings) {
			assert.True(t, s.EnableGeolocation)
			assert.False(t, s.EnableWebhooks)
			assert.True(t, s.TrustedProxies)
			assert.False(t, s.EnableEmailAlerts)
		}, nil},
		{"templates sanitized", `{"emailTemplates":{"newLocation":{"subject":"S","html":"<p onclick=\"x()\">hi</p><script>alert(1)</script><a href=\"javascript:alert(1)\">l</a>","text":5}}}`,
			func(t *testing.T, s Settings) {
				tpl := s.EmailTemplates["newLocation"]
				assert.Equal(t, "S", tpl.Subject)
				assert.NotContains(t, tpl.HTML, "<script")
				assert.NotContains(t, tpl.HTML, "onclick")
				assert.NotContains(t, tpl.HTML, "javascript:")
				assert.Equal(t, "", tpl.Text)
			}, nil},
		{"our own keys decoded when sent", `{"minSecurityScore":55,"blockTor":true,"alertRecipients":["sec@example.com"]}`, func(t *testing.T, s Settings) {
			assert.Equal(t, 55, s.MinSecurityScore)
			assert.True(t, s.BlockTor)
			assert.Equal(t, []string{"sec@example.com"}, s.AlertRecipients)
			assert.Equal(t, "mail.example", s.SMTP.Host)
		}, nil},
		{"unknown keys ignored and reported", `{"bogus":1,"inactivityTimeout":20,"zzz":null}`, func(t *testing.T, s Settings) {
			assert.Equal(t, 20, s.InactivityTimeout)
		}, []string{"bogus", "zzz"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ignored, err := Apply(cur, []byte(tc.body))
			require.NoError(t, err)
			require.NoError(t, s.Validate(), "what Apply returns always validates")
			assert.Equal(t, tc.ignored, ignored)
			tc.check(t, s)
		})
	}
	for _, bad := range []string{`[]`, `null`, `"x"`, `{`, `{"smtp":{"nope":1}}`, `{"webhooks":"x"}`} {
		_, _, err := Apply(cur, []byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestAllowedWebhookURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://discord.com/api/webhooks/1/x":     true,
		"https://ptb.discord.com/api/webhooks/1/x": true,
		"https://discordapp.com/api/webhooks/1/x":  true,
		"http://discord.com/api/webhooks/1/x":      false,
		"https://discord.com.evil.example/x":       false,
		"https://evildiscord.com/x":                false,
		"https://user@discord.com/x":               false,
		"https://discord.com:8443/x":               false,
		"https://DISCORD.COM/x":                    true,
		"https:discord.com":                        false,
		"https://hooks.slack.com/services/T/B/X":   false, // not a Discord host
	} {
		assert.Equal(t, ok, AllowedWebhookURL(u, "discord.com", "discordapp.com"), u)
	}
}

// FuzzApply: any body either errors or gives settings that validate.
func FuzzApply(f *testing.F) {
	for _, s := range []string{`{}`, `{"inactivityTimeout":"1e9"}`, `{"retentionDays":-1,"allowedCountries":["de"]}`,
		`{"emailTemplates":{"a.b":{"html":"<script>"}}}`, `{"sessionCreationGraceMs":-5}`} {
		f.Add([]byte(s))
	}
	cur := Defaults(15 * time.Minute)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, _, err := Apply(cur, body)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Apply(%q) gave invalid settings: %v", body, err)
		}
	})
}

func TestSanitizeHTML(t *testing.T) {
	for in, want := range map[string]string{
		`<p style="color:#333">{{user.email}}</p>`:              `<p style="color:#333">{{user.email}}</p>`,
		`<scr<script>ipt>alert(1)</script>`:                     `alert(1)`,
		`<img src=x onerror=alert(1)>`:                          `<img src=x>`,
		`<a href="javascript:alert(1)">x</a>`:                   `<a >x</a>`,
		`<svg/onload=alert(1)>`:                                 ``,
		strings.Repeat("<scr", 20) + strings.Repeat("ipt>", 20): "?", // nested past the pass limit: kept as text
	} {
		got := SanitizeHTML(in)
		if want == "?" {
			assert.NotContains(t, got, "<", in)
		} else {
			assert.Equal(t, want, got, in)
		}
		assert.NotRegexp(t, `(?i)<\s*script|onerror\s*=|javascript:`, got)
	}
}

// TestApplyOwnKeyTypeErrors: a key only sessionsvc has, sent with the
// wrong type, is refused in the settings' words, not Go's.
func TestApplyOwnKeyTypeErrors(t *testing.T) {
	cur := Defaults(15 * time.Minute)
	for body, want := range map[string]string{
		`{"blockTor":1}`:              "blockTor: must be true or false, got number",
		`{"minSecurityScore":"high"}`: "minSecurityScore: must be a whole number, got string",
		`{"alertRecipients":"a@b.c"}`: "alertRecipients: must be a list, got string",
		`{"smtp":{"port":"x"}}`:       "smtp: must be a whole number (port), got string",
	} {
		_, _, err := Apply(cur, []byte(body))
		require.Error(t, err, body)
		assert.Equal(t, want, err.Error(), body)
	}
}
