package wire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/service"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// TestThroughTheServer registers logins and reports failed logins through
// sessionsvc's real HTTP server with this package's enricher plugged in.
func TestThroughTheServer(t *testing.T) {
	dir := t.TempDir()
	mmdb := filepath.Join(dir, "city.mmdb")
	require.NoError(t, geoiptest.Write(mmdb, geoiptest.City, geoiptest.Samples))
	tor := filepath.Join(dir, "tor.txt")
	require.NoError(t, os.WriteFile(tor, []byte("1.130.0.0/24\n"), 0o644))
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
