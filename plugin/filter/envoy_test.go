package filter_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// The login and refresh answers on plugin.wasm, driven callback by callback
// on Envoy's default host (a paused headers callback stops everything) and
// with the opt-in (allow_on_headers_stop_iteration + headers_stop_iteration).

func envoyHost(t *testing.T, stub *stubSvc, optIn bool, extra string) *host.Host {
	t.Helper()
	module, cache := pluginWasm(t)
	cfg := extra
	if optIn {
		if cfg != "" {
			cfg += ","
		}
		cfg += `"headers_stop_iteration":true`
	}
	cl := map[string]host.Cluster{}
	for name, url := range stub.clusters() {
		cl[name] = host.Cluster{URL: url, Timeout: 5 * time.Second}
	}
	h, err := host.New(context.Background(), host.Config{
		Module: module, Workers: workers, VMID: "meshsession", RootID: "meshsession",
		PluginConfig: []byte(testConfig(cfg)), Clusters: cl, DisableTicks: true, CompilationCache: cache,
		AllowOnHeadersStopIteration: optIn,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.Zero(t, h.ContinueMisuses(), "proxy_continue_stream Envoy asserts against")
		_ = h.Close(context.Background())
	})
	return h
}

// loginStream sends a login request through the filter, then the app's
// answer in chunks; it returns the stream and the last result.
func loginStream(t *testing.T, h *host.Host, worker int, status int, respHeaders [][2]string, chunks []string) (*host.Stream, host.Result) {
	s, res, _ := loginStreamHeaders(t, h, worker, status, respHeaders, chunks)
	return s, res
}

// loginStreamHeaders is loginStream, with the response headers callback's answer.
func loginStreamHeaders(t *testing.T, h *host.Host, worker int, status int, respHeaders [][2]string, chunks []string) (*host.Stream, host.Result, host.Action) {
	t.Helper()
	s, err := h.NewStream(worker)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Finish() })
	s.SetDownstream(clientAddr, "127.0.0.1:10000")
	res, err := s.RequestHeaders([][2]string{{":method", "POST"}, {":path", "/api/auth/local"}, {":authority", "app"},
		{":scheme", "http"}, {"content-type", "application/json"}, {"accept-encoding", "gzip, br"}, {"user-agent", "Chunky/1.0"}}, false)
	require.NoError(t, err)
	require.Nil(t, res.LocalResponse)
	_, ok := s.RequestHeader("accept-encoding")
	assert.False(t, ok, "accept-encoding removed: the app answers uncompressed")
	res, err = s.RequestBody([]byte(`{"identifier":"alice","password":"pw"}`), true)
	require.NoError(t, err)
	if res.Action == host.ActionPause { // the pre-login check (logincheck.go)
		ev := waitEvent(t, s)
		require.Equal(t, host.Event{Kind: host.EventContinue, Stream: host.StreamRequest}, ev)
	}

	res, err = s.ResponseHeaders(append([][2]string{{":status", strconv.Itoa(status)}}, respHeaders...), len(chunks) == 0)
	require.NoError(t, err)
	headersAction := res.Action
	for i, c := range chunks {
		res, err = s.ResponseBody([]byte(c), i == len(chunks)-1)
		require.NoError(t, err)
		require.Nil(t, res.LocalResponse)
		if i < len(chunks)-1 {
			require.Equal(t, host.ActionPause, res.Action, "chunk %d held until the end of the answer", i)
		}
	}
	return s, res, headersAction
}

func split(s string, n int) []string {
	var out []string
	size := (len(s) + n - 1) / n
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

func waitEvent(t *testing.T, s *host.Stream) host.Event {
	t.Helper()
	return waitFor(t, s, "the answer was left held", func(host.Event) bool { return true })
}

func TestLoginAnswerOnEnvoyDefaults(t *testing.T) {
	tok := userToken(11, "s-11")
	answer := `{"jwt":"` + tok + `","refreshToken":"r-1","user":{"id":11}}`
	for _, optIn := range []bool{false, true} {
		name := "default host"
		if optIn {
			name = "opt-in"
		}
		t.Run(name, func(t *testing.T) {
			stub := newStub(t)
			h := envoyHost(t, stub, optIn, "")
			for w := 0; w < workers; w++ {
				for _, n := range []int{1, 7, 64} {
					s, res, hdrAction := loginStreamHeaders(t, h, w, 200, [][2]string{{"content-type", "application/json"}}, split(answer, n))
					want := host.ActionContinue // the default host: the headers go on
					if optIn {
						want = host.ActionPause // held (StopIteration)
					}
					assert.Equal(t, want, hdrAction)
					require.Equal(t, host.ActionPause, res.Action, "held while sessionsvc registers it")
					ev := waitEvent(t, s)
					require.Equal(t, host.EventContinue, ev.Kind)
					assert.Equal(t, answer, string(s.ResponseBodyBytes()), "released intact")
				}
			}
			rec := stub.recorded()
			require.Len(t, rec.register, workers*3)
			assert.Equal(t, "Chunky/1.0", rec.register[0].UserAgent, "read in the request phase")

			// Refused by sessionsvc: the token never reaches the client.
			stub.set(func(s *stubSvc) {
				s.registerAnswer = protocol.RegisterResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonPolicy}
			})
			s, res := loginStream(t, h, 0, 200, [][2]string{{"content-type", "application/json"}}, split(answer, 5))
			require.Equal(t, host.ActionPause, res.Action)
			ev := waitEvent(t, s)
			if optIn {
				require.Equal(t, host.EventLocalResponse, ev.Kind, "headers held: a clean local reply")
				assert.Equal(t, uint32(403), ev.LocalResponse.Status)
				assert.Contains(t, string(ev.LocalResponse.Body), `"reason":"policy"`)
			} else {
				assert.Equal(t, host.EventClose, ev.Kind, "headers went out: Envoy resets the stream")
				assert.True(t, s.Reset())
				assert.NotContains(t, string(s.ResponseBodyBytes()), tok)
				assert.Contains(t, string(s.ResponseBodyBytes()), `"reason":"policy"`, "the held body was replaced")
			}
		})
	}
}

func TestUnreadableLoginAnswers(t *testing.T) {
	tok := userToken(12, "s-12")
	cases := []struct {
		name    string
		headers [][2]string
		chunks  []string
		why     string
	}{
		{"gzip", [][2]string{{"content-encoding", "gzip"}}, []string{"\x1f\x8b\x08\x00", "garbage" + tok}, protocol.UnreadableCompressed},
		{"html", [][2]string{{"content-type", "text/html"}}, []string{"<html>", tok, "</html>"}, protocol.UnreadableNotJSON},
		{"no token", nil, []string{`{"token":"`, tok, `"}`}, protocol.UnreadableNoToken},
		{"too large", nil, []string{`{"jwt":"` + tok + `","pad":"`, strings.Repeat("x", 1<<20), `"}`}, protocol.UnreadableTooLarge},
		{"no body", nil, nil, protocol.UnreadableNotJSON},
	}
	for _, policyActive := range []bool{false, true} {
		t.Run("policy active "+strconv.FormatBool(policyActive), func(t *testing.T) {
			stub := newStub(t)
			if policyActive {
				stub.set(func(s *stubSvc) {
					s.unreadableAnswer = protocol.UnreadableLoginResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonPolicy}
				})
			}
			h := envoyHost(t, stub, false, "")
			for _, tc := range cases {
				s, res := loginStream(t, h, -1, 200, tc.headers, tc.chunks)
				require.Equal(t, host.ActionPause, res.Action, tc.name)
				ev := waitEvent(t, s)
				if policyActive {
					assert.NotEqual(t, host.EventContinue, ev.Kind, "%s: refused", tc.name)
					assert.NotContains(t, string(s.ResponseBodyBytes()), tok, tc.name)
				} else {
					assert.Equal(t, host.EventContinue, ev.Kind, "%s: passes unregistered", tc.name)
				}
			}
			rec := stub.recorded().unreadable
			require.Len(t, rec, len(cases))
			for i, tc := range cases {
				assert.Equal(t, tc.why, rec[i].Why, tc.name)
				assert.Equal(t, "203.0.113.9", rec[i].IP)
			}
			assert.Empty(t, stub.recorded().register, "nothing to register")
		})
	}
}
