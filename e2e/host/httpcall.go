package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/internal/cputime"
)

// Envoy's local-reply bodies for failed callouts.
const (
	bodyNoHealthyUpstream = "no healthy upstream"
	bodyConnectFailure    = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	bodyRequestTimeout    = "upstream request timeout"
	maxCalloutBody        = 64 << 20
)

type cluster struct {
	name    string
	base    *url.URL // nil: no healthy upstream
	timeout time.Duration
	client  *http.Client
}

func newClusters(cfg map[string]Cluster, rt http.RoundTripper) (map[string]*cluster, error) {
	out := make(map[string]*cluster, len(cfg))
	for name, c := range cfg {
		cl := &cluster{name: name, timeout: c.Timeout}
		if c.URL != "" {
			u, err := url.Parse(c.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("cluster %q: URL %q is not an http(s) base URL", name, c.URL)
			}
			cl.base = u
		}
		transport := rt
		if transport == nil {
			ct := c.ConnectTimeout
			if ct <= 0 {
				ct = 5 * time.Second
			}
			transport = &http.Transport{
				DialContext:         (&net.Dialer{Timeout: ct}).DialContext,
				DisableCompression:  true,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     time.Minute,
			}
		}
		cl.client = &http.Client{Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		out[name] = cl
	}
	return out, nil
}

// calloutResponse is what proxy_on_http_call_response exposes to the guest.
type calloutResponse struct {
	headers, trailers *headerMap // nil for a reset stream
	body              []byte
}

type calloutRequest struct {
	cluster  *cluster
	headers  [][2]string
	body     []byte
	trailers [][2]string
	timeout  time.Duration
}

// validateCallout applies Envoy's synchronous checks of proxy_http_call.
func (h *Host) validateCallout(name string, headers [][2]string) (*cluster, Status) {
	cl, ok := h.clusters[name]
	if !ok {
		return nil, StatusBadArgument
	}
	var path, method, authority bool
	for _, p := range headers {
		switch strings.ToLower(p[0]) {
		case ":path":
			path = p[1] != ""
		case ":method":
			method = p[1] != ""
		case ":authority":
			authority = p[1] != ""
		}
	}
	if !path || !method || !authority {
		return nil, StatusBadArgument
	}
	return cl, StatusOK
}

// dispatch performs the callout on its own goroutine and delivers the answer
// with proxy_on_http_call_response on the same worker, under its lock.
func (w *worker) dispatch(id uint32, req calloutRequest) {
	h := w.h
	if h.closed.Load() {
		return
	}
	h.wg.Add(1)
	h.inflight.Add(1)
	go func() {
		defer h.wg.Done()
		defer h.inflight.Add(-1)
		resp, ok := h.roundTrip(req)
		if !ok { // host shutting down: Envoy cancels callouts without a callback
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.usable() != nil {
			return
		}
		w.cur, w.effective = nil, 0
		w.callout = resp
		nh, nt := 0, 0
		if resp.headers != nil {
			nh = len(resp.headers.pairs)
		}
		if resp.trailers != nil {
			nt = len(resp.trailers.pairs)
		}
		runtime.LockOSThread() // for cputime.Thread: the guest runs on this thread
		start, cpu := time.Now(), cputime.Thread()
		_, _ = w.call("proxy_on_http_call_response", w.fns.httpCallResponse,
			uint64(w.rootID), uint64(id), uint64(nh), uint64(len(resp.body)), uint64(nt))
		h.calloutCallbacks.Add(int64(time.Since(start)))
		h.calloutCallbacksCPU.Add(int64(cputime.Thread() - cpu))
		runtime.UnlockOSThread()
		w.callout = nil
		w.cur, w.effective = nil, 0
	}()
}

func localReply(status int, body string) *calloutResponse {
	return &calloutResponse{
		headers: newHeaderMap([][2]string{
			{":status", strconv.Itoa(status)},
			{"content-length", strconv.Itoa(len(body))},
			{"content-type", "text/plain"},
		}),
		body: []byte(body),
	}
}

// roundTrip sends the callout. ok is false when the host is closing.
func (h *Host) roundTrip(req calloutRequest) (*calloutResponse, bool) {
	cl := req.cluster
	if cl.base == nil {
		return localReply(http.StatusServiceUnavailable, bodyNoHealthyUpstream), true
	}
	ctx := h.ctx
	timeout := req.timeout
	if timeout <= 0 {
		timeout = cl.timeout
	}
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()

	var method, path, authority string
	hdr := http.Header{}
	for _, p := range req.headers {
		k := strings.ToLower(p[0])
		switch k {
		case ":method":
			method = p[1]
		case ":path":
			path = p[1]
		case ":authority":
			authority = p[1]
		case "host", "content-length", "transfer-encoding", "connection":
		default:
			if !strings.HasPrefix(k, ":") {
				hdr.Add(p[0], p[1])
			}
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := strings.TrimSuffix(cl.base.String(), "/") + path
	hreq, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(req.body))
	if err != nil {
		return localReply(http.StatusServiceUnavailable, bodyConnectFailure), true
	}
	hreq.Header = hdr
	hreq.Host = authority
	if len(req.trailers) > 0 {
		hreq.Trailer = http.Header{}
		for _, p := range req.trailers {
			hreq.Trailer.Add(p[0], p[1])
		}
		hreq.ContentLength = -1
	}
	resp, err := cl.client.Do(hreq)
	if err != nil {
		switch {
		case h.ctx.Err() != nil:
			return nil, false
		case errors.Is(err, context.DeadlineExceeded):
			return localReply(http.StatusGatewayTimeout, bodyRequestTimeout), true
		default:
			return localReply(http.StatusServiceUnavailable, bodyConnectFailure), true
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCalloutBody+1))
	if err == nil && len(body) > maxCalloutBody {
		err = errors.New("callout response body too large")
	}
	if err != nil {
		if h.ctx.Err() != nil {
			return nil, false
		}
		// Reset after the headers were received: Envoy's onFailure(Reset),
		// delivered as a callback without headers.
		return &calloutResponse{}, true
	}
	out := &calloutResponse{headers: newHeaderMap([][2]string{{":status", strconv.Itoa(resp.StatusCode)}}), body: body}
	for _, p := range sortedHeader(resp.Header) {
		out.headers.add(p[0], p[1])
	}
	if len(resp.Trailer) > 0 {
		out.trailers = newHeaderMap(sortedHeader(resp.Trailer))
	}
	return out, true
}

func sortedHeader(hd http.Header) [][2]string {
	keys := make([]string, 0, len(hd))
	for k := range hd {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][2]string
	for _, k := range keys {
		for _, v := range hd[k] {
			out = append(out, [2]string{strings.ToLower(k), v})
		}
	}
	return out
}
