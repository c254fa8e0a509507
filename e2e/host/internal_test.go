package host

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCASCounterSkipsZero(t *testing.T) {
	p := NewProcess()
	p.cas = math.MaxUint32 - 1
	s := p.SharedData("vm")
	require.Equal(t, StatusOK, s.Set("a", []byte("1"), 0))
	require.Equal(t, StatusOK, s.Set("b", []byte("2"), 0))
	_, casA, _ := s.Get("a")
	_, casB, _ := s.Get("b")
	assert.Equal(t, uint32(math.MaxUint32), casA)
	assert.Equal(t, uint32(1), casB, "the counter wraps to 1, never 0")
}

func TestHeaderMapOps(t *testing.T) {
	m := newHeaderMap([][2]string{{"A", "1"}, {"b", "2"}, {"a", "3"}})
	v, ok := m.get("a")
	assert.True(t, ok)
	assert.Equal(t, "1", v, "first value, keys lower-cased")
	m.replace("A", "x")
	assert.Equal(t, [][2]string{{"a", "x"}, {"b", "2"}}, m.pairs, "replace keeps the first position and drops duplicates")
	m.add("C", "4")
	m.replace("d", "5")
	m.remove("B")
	assert.Equal(t, [][2]string{{"a", "x"}, {"c", "4"}, {"d", "5"}}, m.pairs)
	assert.Equal(t, len(EncodePairs(m.pairs)), m.encodedSize())
}

func testHost(t *testing.T, clusters map[string]Cluster) *Host {
	t.Helper()
	cl, err := newClusters(clusters, nil)
	require.NoError(t, err)
	h := &Host{clusters: cl}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.cancel)
	return h
}

func TestCalloutValidation(t *testing.T) {
	h := testHost(t, map[string]Cluster{"svc": {URL: "http://127.0.0.1:1"}})
	full := [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "svc"}}
	_, st := h.validateCallout("svc", full)
	assert.Equal(t, StatusOK, st)
	_, st = h.validateCallout("nope", full)
	assert.Equal(t, StatusBadArgument, st, "unknown cluster")
	for i := range full {
		missing := append(append([][2]string(nil), full[:i]...), full[i+1:]...)
		_, st = h.validateCallout("svc", missing)
		assert.Equal(t, StatusBadArgument, st, "missing %s", full[i][0])
	}
	_, err := newClusters(map[string]Cluster{"bad": {URL: "ftp://x"}}, nil)
	assert.Error(t, err)
}

func callout(h *Host, name string, timeout time.Duration) *calloutResponse {
	resp, _ := h.roundTrip(calloutRequest{cluster: h.clusters[name], timeout: timeout,
		headers: [][2]string{{":method", "POST"}, {":path", "/p?q=1"}, {":authority", "svc.local"}, {"x-k", "v"}},
		body:    []byte("payload")})
	return resp
}

func TestCalloutOutcomes(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo-Host", r.Host)
		w.Header().Set("X-Echo-Key", r.Header.Get("x-k"))
		w.Header().Set("Trailer", "X-Trailer")
		w.WriteHeader(201)
		_, _ = w.Write([]byte(r.Method + " " + r.URL.String()))
		w.Header().Set("X-Trailer", "t")
	}))
	defer ok.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		_ = buf.Flush()
		_ = conn.Close()
	}))
	defer reset.Close()
	closedBeforeHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer closedBeforeHeaders.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	h := testHost(t, map[string]Cluster{
		"ok": {URL: ok.URL}, "slow": {URL: slow.URL}, "reset": {URL: reset.URL},
		"closed": {URL: closedBeforeHeaders.URL}, "refused": {URL: refused}, "empty": {},
		"slowdefault": {URL: slow.URL, Timeout: 100 * time.Millisecond},
	})

	r := callout(h, "ok", time.Second)
	st, _ := r.headers.get(":status")
	assert.Equal(t, "201", st)
	v, _ := r.headers.get("x-echo-host")
	assert.Equal(t, "svc.local", v, ":authority becomes Host")
	v, _ = r.headers.get("x-echo-key")
	assert.Equal(t, "v", v)
	assert.Equal(t, "POST /p?q=1", string(r.body))
	require.NotNil(t, r.trailers)
	v, _ = r.trailers.get("x-trailer")
	assert.Equal(t, "t", v)

	for name, want := range map[string]struct {
		status string
		body   string
	}{
		"empty":       {"503", bodyNoHealthyUpstream},
		"refused":     {"503", bodyConnectFailure},
		"closed":      {"503", bodyConnectFailure},
		"slow":        {"504", bodyRequestTimeout},
		"slowdefault": {"504", bodyRequestTimeout},
	} {
		timeout := 100 * time.Millisecond
		if name == "slowdefault" {
			timeout = 0 // the cluster's timeout applies
		}
		r := callout(h, name, timeout)
		require.NotNil(t, r.headers, name)
		st, _ := r.headers.get(":status")
		assert.Equal(t, want.status, st, name)
		assert.Equal(t, want.body, string(r.body), name)
	}

	r = callout(h, "reset", time.Second)
	assert.Nil(t, r.headers, "a reset after the headers: callback without headers")
	assert.Empty(t, r.body)

	h.cancel()
	resp, delivered := h.roundTrip(calloutRequest{cluster: h.clusters["slow"],
		headers: [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "a"}}})
	assert.False(t, delivered, "no callback once the host is closing")
	assert.Nil(t, resp)
}

// TestLowerKey: lowerKey is strings.ToLower, returning an already
// lower-case ASCII key itself.
func TestLowerKey(t *testing.T) {
	for _, k := range []string{"", "x-a", ":status", "Content-Type", "AUTHORIZATION", "x-\u00c9t\u00e9", "\u00c4b", "a\xffB"} {
		assert.Equal(t, strings.ToLower(k), lowerKey(k), "%q", k)
	}
	k := "x-session-id"
	assert.Same(t, unsafe.StringData(k), unsafe.StringData(lowerKey(k)), "no copy")
}

// TestHeaderKey: a mutated header's map key is the guest's bytes
// lower-cased, interned up to maxHeaderNames names, copied (never aliasing
// guest memory).
func TestHeaderKey(t *testing.T) {
	w := &worker{}
	buf := []byte("X-Session-Id")
	a := w.headerKey(buf)
	buf[0] = 'Y' // the guest reuses its memory
	if a != "x-session-id" {
		t.Fatalf("aliased guest memory or not lower-cased: %q", a)
	}
	if b := w.headerKey([]byte("X-Session-Id")); unsafe.StringData(b) != unsafe.StringData(a) || len(w.headerNames) != 1 {
		t.Fatalf("not interned: %q, %d names", b, len(w.headerNames))
	}
	if got := w.headerKey([]byte("x-session-id")); got != "x-session-id" || len(w.headerNames) != 2 {
		t.Fatalf("got %q, %d names", got, len(w.headerNames))
	}
	long := strings.Repeat("A", 65)
	if got := w.headerKey([]byte(long)); got != strings.ToLower(long) {
		t.Fatalf("long name: %q", got)
	}
	if len(w.headerNames) != 2 {
		t.Fatal("long name interned")
	}
	for i := 0; i < 2*maxHeaderNames; i++ {
		name := fmt.Sprintf("h-%d", i)
		if got := w.headerKey([]byte(name)); got != name {
			t.Fatalf("got %q for %q", got, name)
		}
	}
	if len(w.headerNames) != maxHeaderNames {
		t.Fatalf("%d names interned, bound %d", len(w.headerNames), maxHeaderNames)
	}
}

// TestValueArena: values are copies of guest memory, never rewritten once
// handed out; a value that no longer fits is an ordinary copy.
func TestValueArena(t *testing.T) {
	var a valueArena
	guest := []byte("live-session")
	v1 := a.string(guest)
	copy(guest, "XXXX") // the guest reuses its memory
	v2 := a.string([]byte("42"))
	big := strings.Repeat("b", valueArenaSize)
	v3 := a.string([]byte(big))
	v4 := a.string([]byte("7"))
	assert.Equal(t, []string{"live-session", "42", big, "7"}, []string{v1, v2, v3, v4})
	assert.Equal(t, "", a.string(nil))
	assert.Equal(t, len("live-session")+len("42")+len("7"), a.used, "the big value did not fit")
}

func TestEnumNames(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{StatusOK, "Ok"}, {StatusCasMismatch, "CasMismatch"}, {StatusUnimplemented, "Unimplemented"}, {Status(13), "Status(13)"},
		{ActionPause, "Pause"}, {Action(2), "Action(2)"},
		{StreamUpstream, "upstream"}, {MetricHistogram, "histogram"}, {LogCritical, "critical"}, {LogLevel(6), "LogLevel(6)"},
		{FailReload, "FAIL_RELOAD"}, {FailurePolicy(-1), "FailurePolicy(-1)"},
		{EventContinue, "continue"}, {EventLocalResponse, "local_response"}, {EventKind(0), "EventKind(0)"},
	} {
		assert.Equal(t, tc.want, tc.v.String())
	}
}
