package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Webhook formats.
const (
	FormatJSON    = "json"    // the Payload, signed with HMAC-SHA256
	FormatSlack   = "slack"   // Slack incoming webhook
	FormatDiscord = "discord" // Discord webhook
)

// Headers of the generic JSON format.
const (
	HeaderSignature = "X-Meshsession-Signature" // t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>
	HeaderEvent     = "X-Meshsession-Event"
	HeaderDelivery  = "X-Meshsession-Delivery" // the alert id: the same on every retry, for de-duplication
)

// WebhookConfig configures one webhook.
type WebhookConfig struct {
	Name   string // the channel is "webhook:<Name>"
	URL    string
	Format string // FormatJSON (default), FormatSlack, FormatDiscord
	// Secret signs FormatJSON bodies (required for FormatJSON).
	Secret string
	// Timeout of one request (default 10 s).
	Timeout time.Duration
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
	// Events posted (empty = all).
	Events []string
}

// Webhook posts alerts to an HTTP endpoint. Redirects are not followed (a
// redirect is a failure); 5xx, 408, 429 and network errors are retried,
// other answers are permanent failures.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	now    func() time.Time
}

// NewWebhook checks cfg and returns the sender.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.Name == "" {
		return nil, errors.New("webhook: name is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %s: url must be http(s)://host/…", cfg.Name)
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatJSON
	case FormatJSON, FormatSlack, FormatDiscord:
	default:
		return nil, fmt.Errorf("webhook %s: format %q is not one of json, slack, discord", cfg.Name, cfg.Format)
	}
	if cfg.Format == FormatJSON && cfg.Secret == "" {
		return nil, fmt.Errorf("webhook %s: the json format needs a signing secret", cfg.Name)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	client := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: cfg.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return &Webhook{cfg: cfg, client: client, now: time.Now}, nil
}

// Channel is the channel name of this webhook.
func (w *Webhook) Channel() string { return ChannelWebhookPrefix + w.cfg.Name }

// Body renders the request body for p in the webhook's format.
func (w *Webhook) Body(a store.Alert, p Payload) ([]byte, error) {
	switch w.cfg.Format {
	case FormatSlack:
		return json.Marshal(slackBody(Render(p), alertTime(p)))
	case FormatDiscord:
		return json.Marshal(discordBody(Render(p), alertTime(p)))
	}
	return json.Marshal(jsonBody{ID: a.ID, Payload: p})
}

func alertTime(p Payload) time.Time {
	if p.At.IsZero() {
		return time.Now()
	}
	return p.At
}

type jsonBody struct {
	ID int64 `json:"id"`
	Payload
}

// Send posts the alert.
func (w *Webhook) Send(ctx context.Context, a store.Alert, p Payload) error {
	body, err := w.Body(a, p)
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: encode: %w", w.cfg.Name, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", w.cfg.Name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "meshsession-alerts/1")
	req.Header.Set(HeaderEvent, p.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(a.ID, 10))
	if w.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, w.now(), body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.cfg.Name, redactURLError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		return Permanent(fmt.Errorf("webhook %s: answered a redirect (%d to %q); redirects are not followed, fix the url",
			w.cfg.Name, code, resp.Header.Get("Location")))
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return fmt.Errorf("webhook %s: answered %d: %s", w.cfg.Name, code, oneLine(string(snippet), 200))
	default:
		return Permanent(fmt.Errorf("webhook %s: answered %d: %s", w.cfg.Name, code, oneLine(string(snippet), 200)))
	}
}

// redactURLError drops the url (webhook urls carry tokens) from a client error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Sign computes the signature header value for body at time t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature verification errors.
var (
	ErrSignatureMissing = errors.New("signature header missing or malformed")
	ErrSignatureStale   = errors.New("signature timestamp outside the tolerance (replay?)")
	ErrSignatureInvalid = errors.New("signature does not match")
)

// DefaultTolerance is how far a signature's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// Verify checks a HeaderSignature value against body: the timestamp must be
// within tolerance of now (DefaultTolerance when 0) and one v1 signature
// must match (several are allowed, for secret rotation). For receivers of
// the generic JSON webhook.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrSignatureMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrSignatureMissing
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureInvalid
}

// VerifyRequest reads and verifies a signed webhook request, returning its body.
func VerifyRequest(r *http.Request, secret string, now time.Time, tolerance time.Duration, maxBody int64) ([]byte, error) {
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	if err := Verify(secret, r.Header.Get(HeaderSignature), body, now, tolerance); err != nil {
		return nil, err
	}
	return body, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(0, n-len("…"))
	// Do not cut a UTF-8 sequence in half.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// Slack: Block Kit in one colored attachment, as the Strapi plugin sends
// (services/notifications.js formatSlackWebhook): a header, a section of
// mrkdwn fields, a context line.

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"` // header, section, context
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackAttachment struct {
	Color  string       `json:"color"`
	Blocks []slackBlock `json:"blocks"`
}

type slackMessage struct {
	Text        string            `json:"text"` // fallback for clients without Block Kit
	Attachments []slackAttachment `json:"attachments"`
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackBody respects Block Kit's limits: header 150, 10 fields of 2000.
func slackBody(m Message, at time.Time) slackMessage {
	var fields []slackText
	if m.Denied != "" {
		fields = append(fields, slackText{"mrkdwn", clip("*"+slackEscape(m.Denied)+"*", 2000)})
	}
	for _, f := range m.Fields {
		if len(fields) == 10 {
			break
		}
		fields = append(fields, slackText{"mrkdwn", clip("*"+slackEscape(f.Label)+"*\n"+slackEscape(f.Value), 2000)})
	}
	blocks := []slackBlock{{Type: "header", Text: &slackText{"plain_text", clip(m.Title, 150)}}}
	if m.Intro != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{"mrkdwn", clip(slackEscape(m.Intro), 3000)}})
	}
	if len(fields) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{
		{"mrkdwn", clip(slackEscape(m.Footer), 300)}, {"mrkdwn", at.UTC().Format(time.RFC3339)}}})
	return slackMessage{Text: slackEscape(m.Title), Attachments: []slackAttachment{{Color: fmt.Sprintf("#%06X", m.Color), Blocks: blocks}}}
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordFooter struct {
	Text string `json:"text"`
}

// discordEmbed is the plugin's embed: title, color, fields, timestamp,
// footer (and our description).
type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields"`
	Timestamp   string         `json:"timestamp"`
	Footer      discordFooter  `json:"footer"`
}

type discordMessage struct {
	Embeds          []discordEmbed `json:"embeds"`
	AllowedMentions struct {
		Parse []string `json:"parse"`
	} `json:"allowed_mentions"`
}

// discordBody respects Discord's limits: title 256, description 4096,
// 25 fields, field name 256 and value 1024.
func discordBody(m Message, at time.Time) discordMessage {
	e := discordEmbed{Title: clip(m.Title, 256), Description: clip(m.Intro, 4000), Color: m.Color,
		Timestamp: at.UTC().Format(time.RFC3339), Footer: discordFooter{Text: clip(m.Footer, 2048)}}
	if m.Denied != "" {
		e.Description += "\n**" + clip(m.Denied, 500) + "**"
	}
	e.Fields = []discordField{}
	for i, f := range m.Fields {
		if i == 25 {
			break
		}
		e.Fields = append(e.Fields, discordField{Name: clip(f.Label, 256), Value: clip(f.Value, 1024), Inline: len(f.Value) < 40})
	}
	msg := discordMessage{Embeds: []discordEmbed{e}}
	msg.AllowedMentions.Parse = []string{} // never ping @everyone from user-controlled text
	return msg
}
