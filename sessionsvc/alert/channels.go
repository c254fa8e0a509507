package alert

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ChannelsConfig lists the configured channels.
type ChannelsConfig struct {
	Email    *SMTPConfig // nil = no email
	Webhooks []WebhookConfig
}

// Build makes the senders by channel name ("email", "webhook:<name>").
// A channel that cannot be built (bad configuration, a name used twice)
// is left out and reported in the error; the others are built either
// way, so one bad channel never silences the rest.
func (c ChannelsConfig) Build() (map[string]Sender, error) {
	out := map[string]Sender{}
	var errs []error
	if c.Email != nil {
		if e, err := NewEmail(*c.Email); err != nil {
			errs = append(errs, fmt.Errorf("email alerts: %w", err))
		} else {
			out[ChannelEmail] = e
		}
	}
	for _, wc := range c.Webhooks {
		w, err := NewWebhook(wc)
		if err != nil {
			errs = append(errs, err) // names the webhook
			continue
		}
		if _, dup := out[w.Channel()]; dup {
			errs = append(errs, fmt.Errorf("channel %s: name used twice; the first is kept", w.Channel()))
			continue
		}
		out[w.Channel()] = w
	}
	return out, errors.Join(errs...)
}

// Names are the channel names of c, in a stable order.
func (c ChannelsConfig) Names() []string {
	var out []string
	if c.Email != nil {
		out = append(out, ChannelEmail)
	}
	for _, w := range c.Webhooks {
		out = append(out, ChannelWebhookPrefix+w.Name)
	}
	return out
}

// For lists the channels that want event (the enrich.Config.AlertChannels hook).
func (c ChannelsConfig) For(event string) []string {
	var out []string
	if c.Email != nil && wants(c.Email.Events, event) {
		out = append(out, ChannelEmail)
	}
	for _, w := range c.Webhooks {
		if wants(w.Events, event) {
			out = append(out, ChannelWebhookPrefix+w.Name)
		}
	}
	return out
}

func wants(events []string, e string) bool {
	if len(events) == 0 {
		return true
	}
	for _, x := range events {
		if x == e {
			return true
		}
	}
	return false
}

// Override returns c with o's email (when set) and o's webhooks replacing
// c's of the same name.
func (c ChannelsConfig) Override(o ChannelsConfig) ChannelsConfig {
	out := ChannelsConfig{Email: c.Email}
	if o.Email != nil {
		out.Email = o.Email
	}
	names := map[string]bool{}
	for _, w := range o.Webhooks {
		names[w.Name] = true
	}
	for _, w := range c.Webhooks {
		if !names[w.Name] {
			out.Webhooks = append(out.Webhooks, w)
		}
	}
	out.Webhooks = append(out.Webhooks, o.Webhooks...)
	return out
}

// Environment variables read by ChannelsFromEnv.
const (
	EnvSMTPHost      = "SMTP_HOST"
	EnvSMTPPort      = "SMTP_PORT"
	EnvSMTPUser      = "SMTP_USER"
	EnvSMTPPassword  = "SMTP_PASSWORD"
	EnvSMTPFrom      = "SMTP_FROM"
	EnvSMTPTLS       = "SMTP_TLS" // starttls (default), starttls-required, tls, none
	EnvAlertEmailTo  = "ALERT_EMAIL_TO"
	EnvWebhookURL    = "WEBHOOK_URL"
	EnvWebhookFormat = "WEBHOOK_FORMAT" // json (default), slack, discord
	EnvWebhookSecret = "WEBHOOK_SECRET"
	EnvWebhookName   = "WEBHOOK_NAME" // default "default"
)

// ChannelsFromEnv reads the channels from the environment (getenv is
// os.Getenv in main): email when SMTP_HOST is set, one webhook when
// WEBHOOK_URL is set. The configuration is validated.
func ChannelsFromEnv(getenv func(string) string) (ChannelsConfig, error) {
	var c ChannelsConfig
	if host := strings.TrimSpace(getenv(EnvSMTPHost)); host != "" {
		sc := SMTPConfig{
			Host: host, Username: getenv(EnvSMTPUser), Password: getenv(EnvSMTPPassword),
			From: strings.TrimSpace(getenv(EnvSMTPFrom)), TLS: strings.TrimSpace(getenv(EnvSMTPTLS)),
		}
		if p := strings.TrimSpace(getenv(EnvSMTPPort)); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return ChannelsConfig{}, fmt.Errorf("%s: %q is not a port number", EnvSMTPPort, p)
			}
			sc.Port = n
		}
		for _, to := range strings.Split(getenv(EnvAlertEmailTo), ",") {
			if to = strings.TrimSpace(to); to != "" {
				sc.To = append(sc.To, to)
			}
		}
		if _, err := NewEmail(sc); err != nil {
			return ChannelsConfig{}, fmt.Errorf("email alerts (%s, %s, %s): %w", EnvSMTPHost, EnvSMTPFrom, EnvAlertEmailTo, err)
		}
		c.Email = &sc
	}
	if u := strings.TrimSpace(getenv(EnvWebhookURL)); u != "" {
		name := strings.TrimSpace(getenv(EnvWebhookName))
		if name == "" {
			name = "default"
		}
		wc := WebhookConfig{Name: name, URL: u, Format: strings.TrimSpace(getenv(EnvWebhookFormat)), Secret: getenv(EnvWebhookSecret)}
		if _, err := NewWebhook(wc); err != nil {
			return ChannelsConfig{}, fmt.Errorf("webhook alerts (%s, %s, %s): %w", EnvWebhookURL, EnvWebhookFormat, EnvWebhookSecret, err)
		}
		c.Webhooks = append(c.Webhooks, wc)
	}
	return c, nil
}
