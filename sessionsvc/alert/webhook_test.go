package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

func TestSignAndVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"event":"login.threat"}`)
	h := Sign("k1", now, body)
	assert.Regexp(t, `^t=1800000000,v1=[0-9a-f]{64}$`, h)

	require.NoError(t, Verify("k1", h, body, now.Add(time.Minute), 0))
	assert.ErrorIs(t, Verify("k2", h, body, now, 0), ErrSignatureInvalid)
	assert.ErrorIs(t, Verify("k1", h, []byte(`{"event":"login.success"}`), now, 0), ErrSignatureInvalid)
	assert.ErrorIs(t, Verify("k1", h, body, now.Add(6*time.Minute), 0), ErrSignatureStale, "replayed later")
	assert.ErrorIs(t, Verify("k1", h, body, now.Add(-6*time.Minute), 0), ErrSignatureStale, "from the future")
	require.NoError(t, Verify("k1", h, body, now.Add(time.Hour), 2*time.Hour))

	// A signature for another timestamp does not validate with a swapped t=.
	forged := strings.Replace(h, "t=1800000000", "t=1800000300", 1)
	assert.ErrorIs(t, Verify("k1", forged, body, now.Add(5*time.Minute), 0), ErrSignatureInvalid)

	// Rotation: any matching v1 is accepted.
	rot := Sign("old", now, body) + ",v1=" + strings.SplitN(Sign("k1", now, body), "v1=", 2)[1]
	require.NoError(t, Verify("k1", rot, body, now, 0))

	for _, bad := range []string{"", "garbage", "t=abc,v1=00", "v1=" + strings.Repeat("0", 64), "t=1800000000", "t=1800000000,v1=zz"} {
		assert.ErrorIs(t, Verify("k1", bad, body, now, 0), ErrSignatureMissing, bad)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=" + strings.Repeat("ab", 32))
	f.Add(",,=,t=")
	f.Fuzz(func(t *testing.T, header string) {
		_ = Verify("k", header, []byte("x"), time.Unix(1_800_000_000, 0), 0)
	})
}

func TestWebhookJSONSigned(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := VerifyRequest(r, "topsecret", time.Now(), 0, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got.Store(map[string]string{"body": string(body), "event": r.Header.Get(HeaderEvent), "delivery": r.Header.Get(HeaderDelivery), "ct": r.Header.Get("Content-Type")})
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	w, err := NewWebhook(WebhookConfig{Name: "ops", URL: srv.URL, Secret: "topsecret"})
	require.NoError(t, err)
	assert.Equal(t, "webhook:ops", w.Channel())
	require.NoError(t, w.Send(context.Background(), store.Alert{ID: 42}, samplePayload()))
	m := got.Load().(map[string]string)
	assert.Equal(t, EventLoginSuspicious, m["event"])
	assert.Equal(t, "42", m["delivery"])
	assert.Equal(t, "application/json", m["ct"])
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(m["body"]), &body))
	assert.Equal(t, float64(42), body["id"])
	assert.Equal(t, "alice", body["userId"])
	assert.Equal(t, float64(45), body["securityScore"])

	// Wrong secret: the receiver answers 401 -> permanent failure.
	w, err = NewWebhook(WebhookConfig{Name: "ops", URL: srv.URL, Secret: "wrong"})
	require.NoError(t, err)
	err = w.Send(context.Background(), store.Alert{ID: 43}, samplePayload())
	require.ErrorContains(t, err, "answered 401")
	assert.True(t, IsPermanent(err))
}

func TestWebhookSlackAndDiscord(t *testing.T) {
	bodies := make(chan []byte, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	p := samplePayload()
	p.Locale = "fr"
	p.Reasons = append(p.Reasons, strings.Repeat("é", 2000))

	slack, err := NewWebhook(WebhookConfig{Name: "slack", URL: srv.URL, Format: FormatSlack})
	require.NoError(t, err)
	require.NoError(t, slack.Send(context.Background(), store.Alert{ID: 1}, p))
	var sm slackMessage
	require.NoError(t, json.Unmarshal(<-bodies, &sm))
	assert.Equal(t, "Connexion suspecte", sm.Text)
	require.Len(t, sm.Attachments, 1)
	blocks := sm.Attachments[0].Blocks
	require.GreaterOrEqual(t, len(blocks), 3)
	assert.Equal(t, "header", blocks[0].Type)
	assert.Equal(t, slackText{"plain_text", "Connexion suspecte"}, *blocks[0].Text)
	assert.Equal(t, "context", blocks[len(blocks)-1].Type)
	assert.Equal(t, p.At.UTC().Format(time.RFC3339), blocks[len(blocks)-1].Elements[1].Text)
	var all strings.Builder
	var nfields int
	for _, b := range blocks {
		if b.Type != "section" || b.Fields == nil {
			continue
		}
		for _, f := range b.Fields {
			nfields++
			assert.Equal(t, "mrkdwn", f.Type)
			all.WriteString(f.Text + "\n")
			assert.LessOrEqual(t, len(f.Text), 2000)
		}
	}
	assert.LessOrEqual(t, nfields, 10, "Block Kit: at most 10 section fields")
	assert.Contains(t, all.String(), "*Utilisateur*\nalice")
	assert.Contains(t, all.String(), "&lt;script&gt;", "Slack control characters escaped")

	discord, err := NewWebhook(WebhookConfig{Name: "discord", URL: srv.URL, Format: FormatDiscord})
	require.NoError(t, err)
	require.NoError(t, discord.Send(context.Background(), store.Alert{ID: 1}, p))
	var dm discordMessage
	require.NoError(t, json.Unmarshal(<-bodies, &dm))
	require.Len(t, dm.Embeds, 1)
	assert.Equal(t, "Connexion suspecte", dm.Embeds[0].Title)
	assert.Equal(t, 0xF5A623, dm.Embeds[0].Color)
	for _, f := range dm.Embeds[0].Fields {
		assert.LessOrEqual(t, len(f.Value), 1024)
		assert.True(t, strings.ToValidUTF8(f.Value, "?") == f.Value, "clipping keeps valid UTF-8")
	}
	assert.NotNil(t, dm.AllowedMentions.Parse)
	assert.Equal(t, p.At.UTC().Format(time.RFC3339), dm.Embeds[0].Timestamp)
	assert.NotEmpty(t, dm.Embeds[0].Footer.Text)
	var raw map[string]any
	b, err := discord.Body(store.Alert{ID: 1}, p)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	for _, k := range []string{"title", "color", "fields", "timestamp", "footer"} {
		assert.Contains(t, raw["embeds"].([]any)[0], k, "the plugin's embed keys")
	}
}

func TestWebhookFailures(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/429":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/404":
			http.NotFound(w, r)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/slow":
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		case "/ok":
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()

	tests := []struct {
		path      string
		permanent bool
		msg       string
	}{
		{"/500", false, "answered 500: boom"},
		{"/429", false, "answered 429"},
		{"/404", true, "answered 404"},
		{"/redirect", true, "redirect"},
		{"/slow", false, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := calls.Load()
			w, err := NewWebhook(WebhookConfig{Name: "x", URL: srv.URL + tt.path + "?token=SECRET", Format: FormatSlack, Timeout: 200 * time.Millisecond})
			require.NoError(t, err)
			err = w.Send(context.Background(), store.Alert{ID: 1}, samplePayload())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			assert.NotContains(t, err.Error(), "SECRET", "the url's token is not logged")
			assert.Equal(t, tt.permanent, IsPermanent(err))
			assert.Equal(t, before+1, calls.Load(), "one request, redirect not followed")
		})
	}
}

func TestNewWebhookValidates(t *testing.T) {
	for name, c := range map[string]WebhookConfig{
		"no name":      {URL: "https://x"},
		"bad url":      {Name: "a", URL: "ftp://x"},
		"no host":      {Name: "a", URL: "https:///path"},
		"bad format":   {Name: "a", URL: "https://x", Format: "teams"},
		"json no key":  {Name: "a", URL: "https://x"},
		"relative url": {Name: "a", URL: "/hook", Format: FormatSlack},
	} {
		_, err := NewWebhook(c)
		assert.Error(t, err, name)
	}
}
