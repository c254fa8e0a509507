package wire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
	"github.com/meshsession/meshsession/sessionsvc/server"
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
	_, mmdb, tor := sourceFiles(t, "81.2.69.142\n")

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

	// Hooks mounts what it is given beside the outbox routes.
	m, err = Hooks(func(string) string { return "" }, other).Mounts(context.Background(), service.Deps{})
	require.NoError(t, err)
	assert.Len(t, m, 3)
	assert.Contains(t, m, "GET /admin/")
}

// sourceFiles writes the test GeoIP database and a Tor list holding torList
// into a fresh folder and returns the folder and the two paths.
func sourceFiles(t *testing.T, torList string) (dir, mmdb, tor string) {
	t.Helper()
	dir = t.TempDir()
	mmdb = filepath.Join(dir, "city.mmdb")
	require.NoError(t, geoiptest.Write(mmdb, geoiptest.City, geoiptest.Samples))
	tor = filepath.Join(dir, "tor.txt")
	require.NoError(t, os.WriteFile(tor, []byte(torList), 0o644))
	return dir, mmdb, tor
}

// TestThroughTheServer registers logins and reports failed logins through
// sessionsvc's real HTTP server with this package's enricher plugged in.
func TestThroughTheServer(t *testing.T) {
	dir, mmdb, tor := sourceFiles(t, "1.130.0.0/24\n")
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"blockedCountries":["DE"]}`), 0o644))

	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{EnvGeoIP: mmdb, EnvTorFile: tor, EnvPolicyFile: pol,
			"WEBHOOK_URL": "http://127.0.0.1:9/hook", "WEBHOOK_FORMAT": "slack", "WEBHOOK_NAME": "ops"}[k]
	})
	require.NoError(t, err)
	rt, err := New(cfg, service.Deps{Store: st})
	require.NoError(t, err)

	const key = "0123456789abcdef0123"
	srv, err := server.New(server.Config{Store: st, InternalKey: key, Enricher: rt.Service, Geolocator: rt.Service})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	register := func(ip, fp string) protocol.RegisterResponse {
		return post[protocol.RegisterResponse](t, ts.URL, key, protocol.PathSessions, protocol.RegisterRequest{UserID: "alice", Keys: []string{"fp:" + fp}, IP: ip,
			UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
			ExpiresAt: time.Now().Add(time.Hour).Unix(), Route: "/api/auth/local", Locale: "fr-FR"})
	}

	rr := register("81.2.69.142", "a")
	assert.Equal(t, protocol.DecisionAllow, rr.Decision)
	assert.Equal(t, 100, rr.Score)
	s, err := st.GetSession(ctx, rr.SessionID)
	require.NoError(t, err)
	assert.Equal(t, "mobile", s.DeviceType)
	assert.Equal(t, "Safari 17", s.BrowserName)
	assert.Equal(t, "iOS 17.4", s.OSName)
	require.NotNil(t, s.Geo)
	assert.Equal(t, "London", s.Geo.City)

	rr = register("85.214.1.1", "b")
	assert.Equal(t, protocol.DecisionDeny, rr.Decision)
	assert.Equal(t, protocol.ReasonPolicy, rr.Reason)
	assert.Equal(t, "Logins from Germany are not allowed.", rr.Message)

	rr = register("1.130.0.5", "c") // Sydney, Tor, new country, impossible travel
	assert.Equal(t, protocol.DecisionAllow, rr.Decision)
	assert.Less(t, rr.Score, 20)
	s, err = st.GetSession(ctx, rr.SessionID)
	require.NoError(t, err)
	assert.Contains(t, s.ScoreReasons, "Tor exit node")

	// Failed logins lock the identifier (maxFailedLogins 5); its next login
	// request is refused before the app sees it, from any address.
	for range 5 {
		post[protocol.FailedLoginResponse](t, ts.URL, key, protocol.PathFailed, protocol.FailedLogin{IP: "81.2.69.200", Identifier: "mallory", Status: 401})
	}
	check := func(ip, identifier string) protocol.LoginCheckResponse {
		return post[protocol.LoginCheckResponse](t, ts.URL, key, protocol.PathLoginCheck, protocol.LoginCheck{IP: ip, Identifier: identifier})
	}
	cr := check("81.2.69.142", " MALLORY")
	assert.Equal(t, protocol.DecisionDeny, cr.Decision)
	assert.Equal(t, protocol.ReasonLocked, cr.Reason)
	assert.Positive(t, cr.RetryAfter)
	assert.Equal(t, protocol.DecisionAllow, check("81.2.69.200", "alice").Decision, "the address is under its own threshold")
	// The policy decides what it can from the address: Germany is blocked.
	cr = check("85.214.1.1", "alice")
	assert.Equal(t, protocol.LoginCheckResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonPolicy,
		Message: "Logins from Germany are not allowed."}, cr)

	// Admin geolocation answers from the database and the lists.
	const admin = "admin-token-for-the-test"
	sum := sha256.Sum256([]byte(admin))
	_, err = st.CreateAdminToken(ctx, "test", hex.EncodeToString(sum[:]), time.Now())
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/magic-sessionmanager/geolocation/1.130.0.5", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "AU", body.Data["country_code"])
	assert.Equal(t, true, body.Data["isTor"])

	// The alerts went to the outbox: with the session (the Tor login) or on
	// their own (the refused logins).
	all, err := st.ListAlerts(ctx, false, 100)
	require.NoError(t, err)
	events := map[string]int{}
	for _, a := range all {
		assert.Equal(t, "webhook:ops", a.Channel)
		events[a.Event]++
	}
	assert.Equal(t, map[string]int{"login.suspicious": 2, "login.vpn": 1, "login.new_location": 2, "login.locked": 1}, events)
}

// post sends body to sessionsvc's internal API at base+path, requires 200
// and decodes the answer as a T.
func post[T any](t *testing.T, base, key, path string, body any) T {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderKey, key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var v T
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

// A settings webhook named like the slack channel (stored before the
// settings refused it) must not stop delivery on every other channel:
// the env webhook, the email channel and the slack channel still send.
func TestSendersSurviveAChannelNameClash(t *testing.T) {
	st := storetest.OpenSQLite(t)
	cur := settings.Defaults(15 * time.Minute)
	cur.EnableWebhooks = true
	cur.SlackWebhookURL = "http://127.0.0.1:18999/slack"
	cur.Webhooks = []settings.Webhook{{Name: "slack", URL: "http://127.0.0.1:18999/generic", Secret: "s3cret"}}
	env := map[string]string{"WEBHOOK_URL": "http://127.0.0.1:18999/env", "WEBHOOK_FORMAT": "slack",
		"SMTP_HOST": "mail.example", "SMTP_FROM": "alerts@example.com", "ALERT_EMAIL_TO": "ops@example.com"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	rt, err := New(cfg, service.Deps{Store: st, Settings: func(context.Context) settings.Settings { return cur }})
	require.NoError(t, err)
	senders := rt.Senders()
	for _, ch := range []string{"email", "webhook:default", "webhook:slack"} {
		assert.Contains(t, senders, ch)
	}
	assert.Equal(t, []string{"email", "webhook:default", "webhook:slack"}, rt.channels.Load().For("login.vpn"), "the clash is listed once")
}
