package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HandlerOptions tunes Host.Handler.
type HandlerOptions struct {
	// MaxBody bounds the request and response bodies buffered for the
	// filter (default 16 MiB); larger ones are answered 413 / 502.
	MaxBody int64
	// WaitTimeout bounds how long a paused stream may wait for the filter
	// to resume it (default 30 s, then 504 like an Envoy stream timeout).
	WaitTimeout time.Duration
}

// Handler runs each HTTP request through the plugin as an Envoy HTTP filter
// in front of next (typically an httputil.ReverseProxy to the app): request
// headers and body, a wait while the filter pauses, the forwarded request
// with the filter's changes, response headers and body, then the log, done
// and delete callbacks. Bodies are buffered whole. A failed VM is handled by
// the failure policy: FailOpen passes the request to next untouched, the
// others answer 503 as Envoy does.
func (h *Host) Handler(next http.Handler, opts HandlerOptions) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 30 * time.Second
	}
	return &filterHandler{h: h, next: next, opts: opts}
}

type filterHandler struct {
	h    *Host
	next http.Handler
	opts HandlerOptions
}

// errStop ends the exchange after a response was written.
var errStop = errors.New("response written")

func (f *filterHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, f.opts.MaxBody+1))
	if err != nil {
		http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) > f.opts.MaxBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	s, err := f.h.NewStream(-1)
	if err != nil {
		f.failed(w, r, body)
		return
	}
	defer func() { _ = s.Finish() }()
	local := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a.String()
	}
	s.SetDownstream(r.RemoteAddr, local)

	step := func(res Result, err error) error {
		if err != nil {
			if errors.Is(err, ErrVMFailed) {
				f.failed(w, r, body)
				return errStop
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return errStop
		}
		if res.Reset {
			f.reset(w, s)
		}
		if res.LocalResponse == nil && res.Action == ActionPause {
			ctx, cancel := context.WithTimeout(r.Context(), f.opts.WaitTimeout)
			defer cancel()
			ev, err := s.Wait(ctx)
			switch {
			case errors.Is(err, ErrVMFailed):
				f.failed(w, r, body)
				return errStop
			case err != nil:
				http.Error(w, "filter did not resume the stream", http.StatusGatewayTimeout)
				return errStop
			case ev.Kind == EventClose:
				f.reset(w, s)
			}
			res.LocalResponse = ev.LocalResponse
		}
		if res.LocalResponse != nil {
			writeLocal(w, res.LocalResponse)
			return errStop
		}
		return nil
	}

	// The body goes to the filter (or is held by the host while the filter
	// stops the headers) before any wait, as the codec delivers it.
	res, err := s.RequestHeaders(RequestPairs(r), len(body) == 0)
	if err == nil && len(body) > 0 && res.LocalResponse == nil && !res.Reset {
		res, err = s.RequestBody(body, true)
	}
	if step(res, err) != nil {
		return
	}

	out, err := upstreamRequest(r, s.RequestHeaderPairs(), s.RequestBodyBytes())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := &recorder{header: http.Header{}, max: f.opts.MaxBody}
	f.next.ServeHTTP(rec, out)
	if rec.tooLarge {
		http.Error(w, "upstream response too large", http.StatusBadGateway)
		return
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	res, err = s.ResponseHeaders(ResponsePairs(rec.status, rec.header), rec.body.Len() == 0)
	if err == nil && rec.body.Len() > 0 && res.LocalResponse == nil && !res.Reset {
		res, err = s.ResponseBody(rec.body.Bytes(), true)
	}
	if step(res, err) != nil {
		return
	}
	pseudo, hdr := SplitPairs(s.ResponseHeaderPairs())
	status, err := strconv.Atoi(pseudo[":status"])
	if err != nil || status < 100 || status > 999 {
		status = rec.status
	}
	respBody := s.ResponseBodyBytes()
	hdr.Del("Content-Length")
	hdr.Set("Content-Length", strconv.Itoa(len(respBody)))
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

// reset ends the exchange as Envoy's stream reset: the response headers go
// out first if they were already sent downstream, then the stream is
// aborted (the client sees a truncated response or a reset).
func (f *filterHandler) reset(w http.ResponseWriter, s *Stream) {
	if s.ResponseHeadersSent() {
		pseudo, hdr := SplitPairs(s.ResponseHeaderPairs())
		status, err := strconv.Atoi(pseudo[":status"])
		if err != nil || status < 100 || status > 999 {
			status = http.StatusOK
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	panic(http.ErrAbortHandler)
}

// failed applies the failure policy to a request the VM could not handle.
func (f *filterHandler) failed(w http.ResponseWriter, r *http.Request, body []byte) {
	if f.h.cfg.FailurePolicy == FailOpen {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.next.ServeHTTP(w, r)
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

func writeLocal(w http.ResponseWriter, lr *LocalResponse) {
	for _, p := range lr.Headers {
		w.Header().Add(p[0], p[1])
	}
	if len(lr.Body) > 0 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/plain")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(lr.Body)))
	status := int(lr.Status)
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	_, _ = w.Write(lr.Body)
}

// upstreamRequest rebuilds the request with the filter's headers and body.
func upstreamRequest(r *http.Request, pairs [][2]string, body []byte) (*http.Request, error) {
	pseudo, hdr := SplitPairs(pairs)
	out := r.Clone(r.Context())
	out.Header = hdr
	if m := pseudo[":method"]; m != "" {
		out.Method = m
	}
	if a := pseudo[":authority"]; a != "" {
		out.Host = a
	}
	if p := pseudo[":path"]; p != "" {
		u, err := url.ParseRequestURI(p)
		if err != nil {
			return nil, errors.New("filter set an invalid :path")
		}
		out.URL.Path, out.URL.RawPath, out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
	}
	out.RequestURI = ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	hdr.Del("Content-Length")
	return out, nil
}

// recorder buffers the upstream response for the response phase.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	max      int64
	tooLarge bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if int64(r.body.Len()+len(b)) > r.max {
		r.tooLarge = true
		return 0, errors.New("response too large")
	}
	return r.body.Write(b)
}
