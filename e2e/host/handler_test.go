package host_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
)

func TestHandlerRunsRequestsThroughTheFilter(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teapot" {
			w.WriteHeader(418)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-App-Path", r.URL.RequestURI())
		w.Header().Set("X-App-New", r.Header.Get("X-New"))
		_, _ = w.Write(append([]byte("app:"), b...))
	}))
	defer app.Close()
	appURL, err := url.Parse(app.URL)
	require.NoError(t, err)

	start := func(policy host.FailurePolicy) *httptest.Server {
		h := newHost(t, host.Config{Module: guestWasm(t), Workers: 2, DisableTicks: true, FailurePolicy: policy,
			Clusters: map[string]host.Cluster{"up": {URL: app.URL}}})
		srv := httptest.NewServer(h.Handler(httputil.NewSingleHostReverseProxy(appURL), host.HandlerOptions{}))
		t.Cleanup(srv.Close)
		return srv
	}
	do := func(srv *httptest.Server, method, cmd, body string) (*http.Response, string) {
		req, err := http.NewRequest(method, srv.URL+"/api/x?q=1", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Cmd", cmd)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	srv := start(host.FailClosed)
	resp, body := do(srv, "GET", "none", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "app:", body)
	assert.Equal(t, "/api/x?q=1", resp.Header.Get("X-App-Path"))
	assert.Equal(t, "0:200", resp.Header.Get("X-Seen-Status"), "the response phase ran")

	resp, body = do(srv, "GET", "local:403", "")
	assert.Equal(t, 403, resp.StatusCode)
	assert.Equal(t, "denied", body)
	assert.Equal(t, "test", resp.Header.Get("X-Why"))
	assert.Empty(t, resp.Header.Get("X-App-Path"), "the app was not reached")

	resp, _ = do(srv, "GET", "rewrite", "")
	assert.Equal(t, "/rewritten", resp.Header.Get("X-App-Path"), "the filter's :path reaches the app")
	assert.Equal(t, "2", resp.Header.Get("X-App-New"))

	resp, body = do(srv, "POST", "none", "replace me")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "app:new", body, "the filter's body reaches the app")

	resp, body = do(srv, "GET", "callout:up:/ok", "")
	assert.Equal(t, 200, resp.StatusCode, "continued after the callout")
	assert.Equal(t, "app:", body)

	resp, _ = do(srv, "GET", "callout:up:/teapot", "")
	assert.Equal(t, 418, resp.StatusCode, "local response from the callout callback")

	resp, _ = do(srv, "GET", "trap", "")
	assert.Equal(t, 503, resp.StatusCode, "FAIL_CLOSED")
	resp, _ = do(srv, "GET", "none", "")
	resp2, _ := do(srv, "GET", "none", "")
	assert.ElementsMatch(t, []int{200, 503}, []int{resp.StatusCode, resp2.StatusCode},
		"the failed worker keeps failing closed, the other serves")

	srv = start(host.FailOpen)
	resp, body = do(srv, "GET", "trap", "")
	assert.Equal(t, 200, resp.StatusCode, "FAIL_OPEN passes the request through")
	assert.Equal(t, "app:", body)
}
