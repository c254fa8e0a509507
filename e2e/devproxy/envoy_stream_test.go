package devproxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
)

// The connection manager's path normalisation from envoy.yaml happens
// before the filter and the router.
func TestProxyNormalizesPathsFromEnvoyYAML(t *testing.T) {
	srv, seen := upstream(t)
	cfg := envoyConfig(t, srv.Listener.Addr().String(), envoyconfig.FailClosed, "")
	s := start(t, cfg, nil)

	r := do(t, "GET", s.url+"/healthz/../api//x/./y?q=../z", "", nil)
	require.Equal(t, 200, r.status, r.body)
	up, _ := seen.last(t)
	assert.Equal(t, "/api/x/y?q=../z", up.URL.RequestURI(), "the app sees the normalised path")

	// An escaped slash: a redirect to the unescaped, normalised path
	// (UNESCAPE_AND_REDIRECT); nothing reaches the app.
	n := seen.count()
	req, err := http.NewRequest("GET", s.url+"/healthz%2F..%2Fapi/x", nil)
	require.NoError(t, err)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, "/api/x", resp.Header.Get("Location"))
	assert.Equal(t, n, seen.count())

	// Without the settings the raw path goes through.
	cfg = envoyConfig(t, srv.Listener.Addr().String(), envoyconfig.FailClosed, "")
	cfg.Listener.Paths = envoyconfig.PathNormalization{EscapedSlashes: envoyconfig.EscapedSlashesKeep}
	s = start(t, cfg, nil)
	r = do(t, "GET", s.url+"/healthz/../api/x", "", nil)
	require.Equal(t, 200, r.status)
	up, _ = seen.last(t)
	assert.Equal(t, "/healthz/../api/x", up.URL.RequestURI())
}

// A local reply after the response headers went out: the client gets the
// headers, then a reset, and never the upstream's body.
func TestProxyResetAfterResponseHeaders(t *testing.T) {
	srv, _ := upstream(t)
	cfg := envoyConfig(t, srv.Listener.Addr().String(), envoyconfig.FailClosed, "")
	s := start(t, cfg, nil)
	req, err := http.NewRequest("GET", s.url+"/api/x", nil)
	require.NoError(t, err)
	req.Header.Set("x-cmd", "resp-deny")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "yes", resp.Header.Get("X-Upstream"))
	b, err := io.ReadAll(resp.Body)
	assert.Error(t, err, "reset")
	assert.False(t, strings.Contains(string(b), "upstream saw"), "%q", b)

	// With Envoy's opt-in the filter may hold the headers: a clean 403.
	cfg = envoyConfig(t, srv.Listener.Addr().String(), envoyconfig.FailClosed, "")
	cfg.Wasm.AllowOnHeadersStopIteration = true
	s = start(t, cfg, nil)
	r := do(t, "GET", s.url+"/api/x", "", map[string]string{"x-cmd": "resp-deny:hold"})
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "denied", r.body)
}
