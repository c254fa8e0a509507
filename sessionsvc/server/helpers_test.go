package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
	"github.com/meshsession/meshsession/sessionsvc/userauth"
)

const (
	testKey    = "internal-key-0123456789"
	testSecret = "jwt-secret-0123456789abcdef"
	testAdmin  = "admin-token-xyz"
)

type env struct {
	t     testing.TB
	st    store.Store
	srv   *Server
	http  *httptest.Server
	clock *testenv.Clock
}

type envOpt func(*Config)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	return newEnvWithStore(t, storetest.OpenSQLite(t), opts...)
}

func newEnvWithStore(t testing.TB, st store.Store, opts ...envOpt) *env {
	t.Helper()
	ck := testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	v, err := userauth.New(context.Background(), userauth.Config{Secret: testSecret})
	require.NoError(t, err)
	cfg := Config{Store: st, InternalKey: testKey, Users: v, Now: ck.Now}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	_, err = st.CreateAdminToken(context.Background(), "test", HashAdminToken(testAdmin), ck.Now())
	if !errors.Is(err, store.ErrConflict) { // a reused benchmark database has it
		require.NoError(t, err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, st: st, srv: s, http: hs, clock: ck}
}

type resp struct {
	status int
	body   map[string]any
	raw    []byte
	header http.Header
}

func (e *env) do(method, path string, body any, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	require.NoError(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	out := resp{status: res.StatusCode, raw: raw, header: res.Header}
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(e.t, json.Unmarshal(raw, &out.body), string(raw))
	}
	return out
}

func (e *env) internal(method, path string, body any) resp {
	e.t.Helper()
	return e.do(method, path, body, map[string]string{protocol.HeaderKey: testKey})
}

func (e *env) admin(method, path string, body any) resp {
	e.t.Helper()
	return e.do(method, path, body, map[string]string{"Authorization": "Bearer " + testAdmin})
}

func (e *env) user(tok, method, path string, body any) resp {
	e.t.Helper()
	return e.do(method, path, body, map[string]string{"Authorization": "Bearer " + tok})
}

// token signs a user JWT; extra claims override the defaults.
func token(t testing.TB, user, sid string, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	if sid != "" {
		c["sid"] = sid
	}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	require.NoError(t, err)
	return s
}

// tokenKeys are the keys of tok, as the plugin sends them.
func tokenKeys(t testing.TB, tok string) []string {
	t.Helper()
	v, err := userauth.New(context.Background(), userauth.Config{Secret: testSecret})
	require.NoError(t, err)
	ident, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	return ident.Keys
}

// login registers a session for tok through the internal API, as the plugin does.
func (e *env) login(user, tok string, refreshKey string) string {
	e.t.Helper()
	req := protocol.RegisterRequest{UserID: user, Keys: tokenKeys(e.t, tok), IP: "203.0.113.7", UserAgent: "Mozilla/5.0 test",
		ExpiresAt: time.Now().Add(time.Hour).Unix(), Route: "/api/auth/local"}
	if refreshKey != "" {
		req.RefreshKeys = []string{refreshKey}
		req.RefreshExpiresAt = time.Now().Add(24 * time.Hour).Unix()
	}
	r := e.internal("POST", protocol.PathSessions, req)
	require.Equal(e.t, 200, r.status, string(r.raw))
	require.Equal(e.t, protocol.DecisionAllow, r.body["decision"], string(r.raw))
	return r.body["sessionId"].(string)
}

// signIn signs a token for user with session claim sid (none when empty)
// and registers its session: it returns the token and the session's id.
func (e *env) signIn(user, sid string) (tok, sessionID string) {
	e.t.Helper()
	tok = token(e.t, user, sid, nil)
	return tok, e.login(user, tok, "")
}

func (e *env) syncPage(epoch string, cursor int64, limit int) protocol.SyncPage {
	e.t.Helper()
	path := fmt.Sprintf("%s?epoch=%s&cursor=%d", protocol.PathSync, epoch, cursor)
	if limit > 0 {
		path += fmt.Sprintf("&limit=%d", limit)
	}
	r := e.internal("GET", path, nil)
	require.Equal(e.t, 200, r.status, string(r.raw))
	var p protocol.SyncPage
	require.NoError(e.t, json.Unmarshal(r.raw, &p))
	return p
}

// fakeEnricher records calls and answers a fixed result.
type fakeEnricher struct {
	mu      sync.Mutex
	result  enrich.Result
	ended   []string // reasons
	blocked []string // user:sessions ended, per UserBlocked
	failed  int
}

func (f *fakeEnricher) EnrichLogin(ctx context.Context, l enrich.Login) (enrich.Result, error) {
	return f.result, nil
}

func (f *fakeEnricher) FailedLogin(ctx context.Context, fl protocol.FailedLogin, now time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed++
	return f.failed >= 3, nil
}

func (f *fakeEnricher) UserBlocked(ctx context.Context, user string, s []store.Session, now time.Time) []store.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked = append(f.blocked, fmt.Sprintf("%s:%d", user, len(s)))
	return []store.Alert{{Event: "user.blocked", Channel: "email", Payload: json.RawMessage(`{"userId":"` + user + `"}`)}}
}

func (f *fakeEnricher) SessionEnded(ctx context.Context, s []store.Session, reason string, now time.Time) []store.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = append(f.ended, reason)
	return []store.Alert{{Event: "session.terminated", Channel: "email", Payload: json.RawMessage(`{"reason":"` + reason + `"}`)}}
}
