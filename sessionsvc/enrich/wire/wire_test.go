package wire

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"score":{"tor":70},"blockThreat":true}`), 0o644))
	env := map[string]string{
		EnvGeoIP: "/data/city.mmdb", EnvTorFile: "/data/tor.txt", EnvThreatFile: "/data/threat.txt",
		EnvReload: "1m", EnvPolicyFile: pol, EnvAlertAttempts: "5",
		"WEBHOOK_URL": "https://hooks.example.com/x", "WEBHOOK_FORMAT": "discord",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "/data/city.mmdb", c.Enrich.GeoIPPath)
	assert.Equal(t, "/data/tor.txt", c.Enrich.Reputation.Tor)
	assert.Equal(t, time.Minute, c.Enrich.ReloadInterval)
	assert.Equal(t, 70, c.BasePolicy.Score.Tor)
	assert.True(t, c.BasePolicy.BlockThreat)
	assert.Equal(t, 5, c.AlertAttempts)
	assert.Equal(t, []string{"webhook:default"}, c.Channels.Names())

	for k, v := range map[string]string{EnvReload: "soon", EnvAlertAttempts: "0", EnvPolicyFile: filepath.Join(dir, "nope.json"), "SMTP_HOST": "mail"} {
		bad := map[string]string{k: v}
		_, err := ConfigFromEnv(func(k string) string { return bad[k] })
		assert.ErrorContains(t, err, k)
	}
}

// TestEndToEnd: hooks built from the environment, policy and channels from
// the settings, a risky login's alert delivered to a Slack-format webhook
// by the dispatcher, and a settings change applied without a restart.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	mmdb := filepath.Join(dir, "city.mmdb")
	require.NoError(t, geoiptest.Write(mmdb, geoiptest.City, geoiptest.Samples))
	tor := filepath.Join(dir, "tor.txt")
	require.NoError(t, os.WriteFile(tor, []byte("81.2.69.142\n"), 0o644))

	var mu sync.Mutex
	var posts []map[string]any
	var got atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		posts = append(posts, m)
		mu.Unlock()
		got.Add(1)
	}))
	defer hook.Close()

	st := storetest.OpenSQLite(t)

	cur := settings.Defaults(15 * time.Minute)
	cur.EnableWebhooks = true
	cur.SlackWebhookURL = hook.URL
	var setMu sync.Mutex
	deps := service.Deps{Store: st, Settings: func(context.Context) settings.Settings {
		setMu.Lock()
		defer setMu.Unlock()
		return cur
	}}
	env := map[string]string{EnvGeoIP: mmdb, EnvTorFile: tor, EnvPolicyRefresh: "20ms"}
	h := Hooks(func(k string) string { return env[k] })
	e, g, err := h.Enricher(context.Background(), deps)
	require.NoError(t, err)
	require.NotNil(t, g)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		for _, b := range h.Background {
			go b(ctx, deps)
		}
		<-ctx.Done()
		close(done)
	}()
	defer func() { cancel(); <-done }()

	res, err := e.EnrichLogin(ctx, enrich.Login{UserID: "alice", IP: "81.2.69.142", At: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, 50, res.Score)
	assert.False(t, res.Deny)
	require.NotEmpty(t, res.Alerts)
	s := &store.Session{UserID: "alice", IP: "81.2.69.142", Geo: res.Geo, SecurityScore: res.Score}
	require.NoError(t, st.CreateSession(ctx, s, []store.SessionKey{{Key: "fp:a", Kind: store.KeyAccess}}, res.Alerts))

	require.Eventually(t, func() bool { return got.Load() == int32(len(res.Alerts)) }, 10*time.Second, 20*time.Millisecond)
	mu.Lock()
	var texts []any
	for _, p := range posts {
		texts = append(texts, p["text"])
	}
	mu.Unlock()
	assert.ElementsMatch(t, []any{"Suspicious login", "Login through a VPN, proxy or Tor"}, texts)

	// The admin turns on blockTor: the next login is refused, no restart.
	setMu.Lock()
	cur.BlockTor = true
	setMu.Unlock()
	require.Eventually(t, func() bool {
		res, err := e.EnrichLogin(ctx, enrich.Login{UserID: "alice", IP: "81.2.69.142", At: time.Now()})
		return err == nil && res.Deny
	}, 5*time.Second, 20*time.Millisecond)

	// A "security" object in the stored settings document is applied on top.
	require.NoError(t, st.PutSettings(ctx, json.RawMessage(`{"security":{"blockTor":false,"score":{"tor":5}}}`)))
	setMu.Lock()
	cur.BlockTor = false
	setMu.Unlock()
	require.Eventually(t, func() bool {
		res, err := e.EnrichLogin(ctx, enrich.Login{UserID: "alice", IP: "81.2.69.142", At: time.Now()})
		return err == nil && !res.Deny && res.Score == 95
	}, 5*time.Second, 20*time.Millisecond)

	v, err := g.Geolocate(ctx, "81.2.69.142")
	require.NoError(t, err)
	assert.True(t, v.(*enrich.IPInfo).IsTor)
}

func TestCombineMounts(t *testing.T) {
	h := Hooks(func(string) string { return "" })
	other := func(context.Context, service.Deps) (map[string]http.Handler, error) {
		return map[string]http.Handler{"GET /admin/": http.NotFoundHandler()}, nil
	}
	m, err := CombineMounts(h.Mounts, other, nil)(context.Background(), service.Deps{})
	require.NoError(t, err)
	assert.Len(t, m, 3)
	_, err = CombineMounts(other, other)(context.Background(), service.Deps{})
	assert.ErrorContains(t, err, "mounted twice")
}
