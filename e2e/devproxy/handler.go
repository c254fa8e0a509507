package devproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/e2e/envoyconfig"
	"github.com/meshsession/meshsession/e2e/host"
)

// exchange is one request's progress, for the access log.
type exchange struct {
	worker   int
	decision string // upstream, local, no_route, fail_closed, fail_open, …
	reason   string // x-session-terminated-reason of a local response
	route    string
	cluster  string
}

// answer is a complete HTTP response to write downstream.
type answer struct {
	status  int
	headers [][2]string // lower-case names, no pseudo-headers
	body    []byte
	// reset: Envoy resets the stream. With sentHeaders the response
	// headers went downstream first (status and headers are those), then
	// the stream is aborted before any body.
	reset       bool
	sentHeaders bool
}

// ServeHTTP proxies one request through the plugin to its upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{worker: -1}
	a := p.handle(r, ex)
	if a.reset {
		p.account(r, start, ex, a)
		p.write(w, r, a) // aborts the stream
		return
	}
	p.write(w, r, a)
	p.account(r, start, ex, a)
}

// account counts the exchange and writes its access-log line.
func (p *Proxy) account(r *http.Request, start time.Time, ex *exchange, a answer) {
	p.stats.requests.Add(1)
	if c := a.status / 100; c >= 1 && c <= 5 {
		p.stats.status[c].Add(1)
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", a.status),
		slog.Duration("duration", time.Since(start)),
		slog.Int("worker", ex.worker),
		slog.String("decision", ex.decision),
	}
	if ex.cluster != "" {
		attrs = append(attrs, slog.String("route", ex.route), slog.String("cluster", ex.cluster))
	}
	if ex.reason != "" {
		attrs = append(attrs, slog.String("reason", ex.reason))
	}
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

func (p *Proxy) write(w http.ResponseWriter, r *http.Request, a answer) {
	if a.reset {
		p.writeReset(w, a)
	}
	h := w.Header()
	for _, kv := range a.headers {
		if kv[0] == "content-length" || hopByHop[kv[0]] || strings.HasPrefix(kv[0], ":") {
			continue
		}
		h.Add(kv[0], kv[1])
	}
	if r.Method != http.MethodHead || len(a.body) > 0 {
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
	} else if cl := headerValue(a.headers, "content-length"); cl != "" {
		h.Set("Content-Length", cl)
	}
	status := a.status
	if status < 100 || status > 999 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

// writeReset ends the exchange as Envoy's stream reset: the response
// headers first when they had gone downstream, then an aborted stream (an
// HTTP/1.1 client sees the connection closed before the body's end; HTTP/2
// a RST_STREAM).
func (p *Proxy) writeReset(w http.ResponseWriter, a answer) {
	if a.sentHeaders {
		h := w.Header()
		for _, kv := range a.headers {
			if hopByHop[kv[0]] || strings.HasPrefix(kv[0], ":") {
				continue
			}
			h.Add(kv[0], kv[1])
		}
		status := a.status
		if status < 100 || status > 999 {
			status = http.StatusBadGateway
		}
		w.WriteHeader(status)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	panic(http.ErrAbortHandler)
}

// local is a response made by the proxy itself (Envoy's local replies).
func local(status int, body string) answer {
	return answer{status: status, headers: [][2]string{{"content-type", "text/plain"}}, body: []byte(body)}
}

// fromLocal is the filter's local response (proxy_send_local_response) as
// Envoy's sendLocalReply writes it: a body without a content-type gets
// text/plain (Envoy source/common/http/utility.cc Utility::sendLocalReply).
func fromLocal(lr *host.LocalResponse) answer {
	a := answer{status: int(lr.Status), headers: lr.Headers, body: lr.Body}
	if len(lr.Body) > 0 && headerValue(lr.Headers, "content-type") == "" {
		a.headers = append(a.headers[:len(a.headers):len(a.headers)], [2]string{"content-type", "text/plain"})
	}
	return a
}

func headerValue(pairs [][2]string, name string) string {
	for _, kv := range pairs {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// handle runs the request through the filter and the upstream.
func (p *Proxy) handle(r *http.Request, ex *exchange) answer {
	reqBody, tooLarge, err := drain(r.Body, p.opts.MaxRequestBody)
	if tooLarge {
		ex.decision = "request_too_large"
		return local(http.StatusRequestEntityTooLarge, "Payload Too Large")
	}
	if err != nil {
		ex.decision = "downstream_read_error"
		return local(http.StatusBadRequest, "error reading the request body: "+err.Error())
	}
	reqHeaders := p.requestHeaders(r)
	if a, done := p.normalize(reqHeaders, ex); done {
		return a
	}

	pin := -1
	if p.opts.AllowWorkerPin {
		if v := r.Header.Get(WorkerHeader); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n >= p.host.Workers() {
				ex.decision = "bad_worker_pin"
				return local(http.StatusBadRequest, fmt.Sprintf("%s: want a worker index in [0,%d), got %q", WorkerHeader, p.host.Workers(), v))
			}
			pin = n
		}
	}
	s, err := p.host.NewStream(pin)
	if err != nil {
		return p.vmFailure(r, ex, reqHeaders, reqBody, err)
	}
	ex.worker = s.Worker()
	defer func() {
		if err := s.Finish(); err != nil && !errors.Is(err, host.ErrClosed) && !errors.Is(err, host.ErrVMFailed) {
			p.log.Warn("dev proxy: finish stream", "worker", ex.worker, "err", err)
		}
	}()
	localAddr := ""
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		localAddr = la.String()
	}
	s.SetDownstream(r.RemoteAddr, localAddr)
	ctx := r.Context()

	// Request phase.
	fail := func(err error) answer { return p.vmFailure(r, ex, reqHeaders, reqBody, err) }
	if a, done := p.phase(ctx, s, ex, host.StreamRequest, reqHeaders, reqBody, fail); done {
		return a
	}
	upHeaders := s.RequestHeaderPairs()
	upBody := reqBody
	if len(reqBody) > 0 {
		upBody = s.RequestBodyBytes()
	}

	// Upstream.
	up := p.forward(ctx, upHeaders, upBody, ex)

	// Response phase.
	respHeaders := append([][2]string{{":status", strconv.Itoa(up.status)}}, up.headers...)
	fail = func(err error) answer { return p.vmFailureResponse(ex, up, err) }
	if a, done := p.phase(ctx, s, ex, host.StreamResponse, respHeaders, up.body, fail); done {
		return a
	}
	out := answer{status: up.status, body: up.body}
	status := up.status
	for _, kv := range s.ResponseHeaderPairs() {
		if kv[0] == ":status" {
			if n, err := strconv.Atoi(kv[1]); err == nil {
				status = n
			}
			continue
		}
		out.headers = append(out.headers, kv)
	}
	out.status = status
	if len(up.body) > 0 {
		out.body = s.ResponseBodyBytes()
	}
	return out
}

// phase runs one direction through the filter: the headers, then the
// whole body at once, before any wait, as Envoy's codec delivers it (the
// host holds the body while the filter stops the headers), then a wait
// while the filter holds the direction. done is set when the exchange ends
// here with a: a local response, a reset, a failed wait, or fail's answer
// to a VM error.
func (p *Proxy) phase(ctx context.Context, s *host.Stream, ex *exchange, dir host.StreamType,
	headers [][2]string, body []byte, fail func(error) answer) (answer, bool) {
	sendHeaders, sendBody := s.RequestHeaders, s.RequestBody
	if dir == host.StreamResponse {
		sendHeaders, sendBody = s.ResponseHeaders, s.ResponseBody
	}
	res, err := sendHeaders(headers, len(body) == 0)
	if err != nil {
		return fail(err), true
	}
	if a, done := p.stopped(ex, s, res); done {
		return a, true
	}
	if len(body) > 0 {
		if res, err = sendBody(body, true); err != nil {
			return fail(err), true
		}
		if a, done := p.stopped(ex, s, res); done {
			return a, true
		}
	}
	if res.Action != host.ActionPause {
		return answer{}, false
	}
	lr, a, done := p.wait(ctx, s, dir, ex)
	if done {
		return a, true
	}
	if lr != nil {
		return p.localResponse(ex, lr), true
	}
	return answer{}, false
}

// normalize applies the listener's path normalisation to :path in place,
// before any filter, as Envoy's connection manager does; done is set when
// the connection manager answers itself (400, or 307 to the unescaped path).
func (p *Proxy) normalize(hdrs [][2]string, ex *exchange) (answer, bool) {
	for i := range hdrs {
		if hdrs[i][0] != ":path" {
			continue
		}
		path, action := normalizePath(hdrs[i][1], p.env.Listener.Paths)
		switch action {
		case pathReject:
			ex.decision = "path_normalization_failed"
			return answer{status: http.StatusBadRequest}, true
		case pathRedirect:
			ex.decision = "path_normalization_redirect"
			return answer{status: http.StatusTemporaryRedirect, headers: [][2]string{{"location", path}}}, true
		}
		hdrs[i][1] = path
		return answer{}, false
	}
	return answer{}, false
}

// wait blocks until the filter resumes dir, answers locally or closes the
// stream. done is set when the request ends here (answer a).
func (p *Proxy) wait(ctx context.Context, s *host.Stream, dir host.StreamType, ex *exchange) (*host.LocalResponse, answer, bool) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.StreamTimeout)
	defer cancel()
	for {
		ev, err := s.Wait(ctx)
		if err != nil {
			if errors.Is(err, host.ErrVMFailed) || errors.Is(err, host.ErrClosed) {
				p.stats.vmFailures.Add(1)
				ex.decision = "vm_failed"
				return nil, local(http.StatusServiceUnavailable, "wasm filter failed while holding the request"), true
			}
			if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
				ex.decision = "downstream_gone"
				return nil, local(499, "client closed the request"), true
			}
			ex.decision = "filter_timeout"
			return nil, local(http.StatusGatewayTimeout, fmt.Sprintf("the wasm filter held the %s for more than %s", dir, p.opts.StreamTimeout)), true
		}
		switch ev.Kind {
		case host.EventLocalResponse:
			return ev.LocalResponse, answer{}, false
		case host.EventClose:
			return nil, p.resetAnswer(ex, s), true
		case host.EventContinue:
			if ev.Stream == dir {
				return nil, answer{}, false
			}
		}
	}
}

// stopped ends the exchange when a callback answered locally or reset the
// stream.
func (p *Proxy) stopped(ex *exchange, s *host.Stream, res host.Result) (answer, bool) {
	switch {
	case res.Reset:
		return p.resetAnswer(ex, s), true
	case res.LocalResponse != nil:
		return p.localResponse(ex, res.LocalResponse), true
	}
	return answer{}, false
}

// resetAnswer is a stream reset by the filter (proxy_close_stream, or a
// local reply after the response headers went downstream).
func (p *Proxy) resetAnswer(ex *exchange, s *host.Stream) answer {
	ex.decision = "reset_by_filter"
	a := answer{reset: true, sentHeaders: s.ResponseHeadersSent(), status: http.StatusBadGateway}
	if a.sentHeaders {
		for _, kv := range s.ResponseHeaderPairs() {
			if kv[0] == ":status" {
				if n, err := strconv.Atoi(kv[1]); err == nil {
					a.status = n
				}
				continue
			}
			a.headers = append(a.headers, kv)
		}
	}
	return a
}

func (p *Proxy) localResponse(ex *exchange, lr *host.LocalResponse) answer {
	p.stats.local.Add(1)
	ex.decision = "local"
	ex.reason = headerValue(lr.Headers, "x-session-terminated-reason")
	return fromLocal(lr)
}

// vmFailure applies the failure policy when the VM failed before the
// request was forwarded.
func (p *Proxy) vmFailure(r *http.Request, ex *exchange, hdrs [][2]string, body []byte, err error) answer {
	if !errors.Is(err, host.ErrVMFailed) {
		ex.decision = "proxy_unavailable"
		return local(http.StatusServiceUnavailable, "dev proxy: "+err.Error())
	}
	p.stats.vmFailures.Add(1)
	if p.policy == host.FailOpen {
		p.stats.failOpen.Add(1)
		p.log.Warn("dev proxy: wasm VM failed; FAIL_OPEN passes the request through", "worker", ex.worker, "err", firstLine(err))
		ex.decision = "fail_open"
		a := p.forward(r.Context(), hdrs, body, ex)
		ex.decision = "fail_open"
		return a
	}
	p.log.Error("dev proxy: wasm VM failed; refusing the request (failure_policy "+p.env.Wasm.FailurePolicy+")", "worker", ex.worker, "err", firstLine(err))
	ex.decision = "fail_closed"
	return local(http.StatusServiceUnavailable, "wasm filter unavailable: its VM failed (failure_policy "+p.env.Wasm.FailurePolicy+")")
}

// vmFailureResponse applies the failure policy when the VM failed on the
// response path.
func (p *Proxy) vmFailureResponse(ex *exchange, up answer, err error) answer {
	if errors.Is(err, host.ErrVMFailed) && p.policy == host.FailOpen {
		p.stats.vmFailures.Add(1)
		p.stats.failOpen.Add(1)
		ex.decision = "fail_open"
		return up
	}
	return p.vmFailure(nil, ex, nil, nil, err)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// requestHeaders builds the filter's view of the request: pseudo-headers,
// then the headers without hop-by-hop ones, with x-forwarded-for,
// x-forwarded-proto and x-request-id set as Envoy's connection manager does.
func (p *Proxy) requestHeaders(r *http.Request) [][2]string {
	path := r.URL.RequestURI()
	if r.RequestURI != "" && !strings.HasPrefix(r.RequestURI, "http") {
		path = r.RequestURI
	}
	out := [][2]string{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", "http"}}
	listed := connectionListed(r.Header)
	var xff string
	for name, vs := range r.Header {
		lname := strings.ToLower(name)
		if hopByHop[lname] || listed[lname] || lname == "host" || lname == WorkerHeader {
			continue
		}
		if lname == "x-forwarded-for" {
			xff = strings.Join(vs, ",")
			continue
		}
		if lname == "x-forwarded-proto" || (lname == "x-request-id" && p.env.Listener.UseRemoteAddress) {
			continue
		}
		for _, v := range vs {
			out = append(out, [2]string{lname, v})
		}
	}
	if p.env.Listener.UseRemoteAddress {
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if xff != "" {
				xff += ","
			}
			xff += ip
		}
	}
	if xff != "" {
		out = append(out, [2]string{"x-forwarded-for", xff})
	}
	out = append(out, [2]string{"x-forwarded-proto", "http"})
	if r.Header.Get("X-Request-Id") == "" || p.env.Listener.UseRemoteAddress {
		out = append(out, [2]string{"x-request-id", newRequestID()})
	}
	return out
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// forward sends the (filtered) request to the cluster of the first
// matching route and returns the upstream's answer, or Envoy's local reply
// when there is no route or the upstream cannot be reached.
func (p *Proxy) forward(ctx context.Context, hdrs [][2]string, body []byte, ex *exchange) answer {
	method, path, authority := headerValue(hdrs, ":method"), headerValue(hdrs, ":path"), headerValue(hdrs, ":authority")
	urlPath, query, _ := strings.Cut(path, "?")
	route, ok := p.env.Route(urlPath)
	if !ok {
		ex.decision = "no_route"
		return answer{status: http.StatusNotFound}
	}
	ex.route, ex.cluster = routeName(route), route.Cluster
	if ex.decision == "" {
		ex.decision = "upstream"
	}
	up := p.clusters[route.Cluster]
	if up == nil || up.base == nil {
		p.stats.upstreamErrors.Add(1)
		return local(http.StatusServiceUnavailable, "no healthy upstream")
	}
	if route.PrefixRewrite != "" && route.Prefix != "" {
		urlPath = route.PrefixRewrite + strings.TrimPrefix(urlPath, route.Prefix)
	}
	target := up.base.String() + urlPath
	if query != "" {
		target += "?" + query
	}
	if route.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, route.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		ex.decision = "bad_request"
		return local(http.StatusBadRequest, "dev proxy: cannot forward the request: "+err.Error())
	}
	if len(body) == 0 {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	req.Host = authority
	req.Header = http.Header{}
	for _, kv := range hdrs {
		if strings.HasPrefix(kv[0], ":") || kv[0] == "content-length" || hopByHop[kv[0]] {
			continue
		}
		req.Header.Add(kv[0], kv[1])
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = nil // no Go default user agent
	}
	resp, err := up.transport.RoundTrip(req)
	if err != nil {
		p.stats.upstreamErrors.Add(1)
		return p.upstreamError(ctx, up, route, err)
	}
	defer resp.Body.Close()
	respBody, tooLarge, err := drain(resp.Body, p.opts.MaxResponseBody)
	if tooLarge {
		p.stats.upstreamErrors.Add(1)
		return local(http.StatusInternalServerError, fmt.Sprintf("upstream response larger than %d bytes", p.opts.MaxResponseBody))
	}
	if err != nil {
		p.stats.upstreamErrors.Add(1)
		return local(http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
	}
	a := answer{status: resp.StatusCode, body: respBody}
	listed := connectionListed(resp.Header)
	for name, vs := range resp.Header {
		lname := strings.ToLower(name)
		if hopByHop[lname] || listed[lname] {
			continue
		}
		for _, v := range vs {
			a.headers = append(a.headers, [2]string{lname, v})
		}
	}
	return a
}

// upstreamError is Envoy's router local reply for a failed upstream request.
func (p *Proxy) upstreamError(ctx context.Context, up *upstream, route envoyconfig.Route, err error) answer {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return local(http.StatusGatewayTimeout, "upstream request timeout")
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		p.log.Warn("dev proxy: upstream unreachable", "cluster", up.name, "address", up.base.Host, "err", err)
		return local(http.StatusServiceUnavailable, fmt.Sprintf(
			"upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: cluster %q at %s: %v",
			up.name, up.base.Host, opErr.Err))
	}
	p.log.Warn("dev proxy: upstream request failed", "cluster", up.name, "route", routeName(route), "err", err)
	return local(http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
}

func routeName(r envoyconfig.Route) string {
	if r.Path != "" {
		return "path:" + r.Path
	}
	return "prefix:" + r.Prefix
}
