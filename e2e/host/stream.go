package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// LocalResponse is what the guest sent with proxy_send_local_response.
type LocalResponse struct {
	Status     uint32
	Details    string
	Body       []byte
	Headers    [][2]string
	GRPCStatus int32
}

// Result is the outcome of one stream callback.
type Result struct {
	Action Action
	// LocalResponse is set when the guest answered the request itself
	// (during this callback or earlier); the stream is then stopped and the
	// embedder sends this response downstream.
	LocalResponse *LocalResponse
	// Reset is set when Envoy would reset the stream instead: a local reply
	// after the response headers went downstream (filter_manager.cc
	// sendLocalReply: "Prior headers have already been sent"). The embedder
	// must abort the downstream stream (the client sees the response
	// headers, if sent, then a reset); LocalResponse then holds the refused
	// reply for inspection only.
	Reset bool
	// Held is set when the callback was not delivered to the guest: its
	// direction is stopped by a paused headers callback
	// (StopAllIterationAndWatermark). The data is buffered by the host and
	// delivered when the guest resumes the stream (see Stream.Wait).
	Held bool
}

// EventKind says what resumed a paused stream.
type EventKind int

// Events delivered to Stream.Wait.
const (
	// EventContinue: proxy_continue_stream; Event.Stream says which direction.
	EventContinue EventKind = iota + 1
	// EventClose: proxy_close_stream (reset the stream).
	EventClose
	// EventLocalResponse: proxy_send_local_response from another callback
	// (e.g. an http_call response).
	EventLocalResponse
)

func (k EventKind) String() string {
	return enumString(k, "EventKind", []string{EventContinue: "continue", EventClose: "close", EventLocalResponse: "local_response"})
}

// Event is what happened to a paused stream outside its own callbacks.
type Event struct {
	Kind          EventKind
	Stream        StreamType
	LocalResponse *LocalResponse
}

// ErrStreamFinished is returned for callbacks on a finished stream.
var ErrStreamFinished = errors.New("stream finished")

// Stream is one HTTP stream (an HTTP context in the guest) on one worker.
// Its methods are safe to call from any goroutine, one at a time.
type Stream struct {
	w  *worker
	id uint32

	props map[string][]byte

	reqHeaders, reqTrailers   *headerMap
	respHeaders, respTrailers *headerMap
	// reqHeaderStore and respHeaderStore hold the request and response
	// headers (reqHeaders and respHeaders point at them once delivered), so
	// a stream is one allocation, not three.
	reqHeaderStore, respHeaderStore headerMap
	// values holds the header values the guest sets (valueArena).
	values                      valueArena
	reqBody, respBody           []byte
	reqBuffering, respBuffering bool
	local                       *LocalResponse
	reset                       bool

	// Envoy's stop-all state per direction (index StreamRequest,
	// StreamResponse), made when a headers callback pauses (most streams
	// never do).
	dirs [2]*dirState
	// respHeadersSent: the response headers went downstream (a later local
	// reply resets the stream).
	respHeadersSent bool
	// reqMapsGone: proxy_continue_stream dropped the request maps (Envoy's
	// Context::continueStream sets request_headers_, request_body_buffer_
	// and request_trailers_ to nullptr, for either direction).
	reqMapsGone bool
	// reqBodyGone: the same for the request body, until the next request
	// body callback (decodeData sets request_body_buffer_ again).
	reqBodyGone bool
	// inCallback is the direction of the callback running (-1: none), for a
	// proxy_continue_stream made during the callback itself.
	inCallback int
	// continuedInCallback: proxy_continue_stream(inCallback) was called
	// during the running callback (Envoy runs it after the call returns).
	continuedInCallback bool
	// paused: the last callback of the direction answered Pause and the
	// filter has not continued it since.
	paused            [2]bool
	logPhase          bool
	created, finished bool

	events chan Event // made when first needed (eventsLocked)
}

// dirState is one direction's iteration state in Envoy's filter manager
// (source/common/http/filter_manager.cc).
type dirState struct {
	// stopAll: the headers callback answered Pause and proxy-wasm-cpp-host
	// converted it to StopAllIterationAndWatermark
	// (src/context.cc convertVmCallResultToFilterHeadersStatus): no body or
	// trailers callback reaches the filter until it calls
	// proxy_continue_stream itself.
	stopAll bool
	// held is the body the filter manager buffered meanwhile, heldSeen
	// whether any came, heldEnd whether it ended the stream; heldTrailers
	// the trailers, if they came.
	held         []byte
	heldSeen     bool
	heldEnd      bool
	heldTrailers [][2]string
	// resumed: the filter continued while data was held; Wait delivers it
	// (filter_manager.cc commonContinue: buffered data is iterated from the
	// current filter after a StopAll).
	resumed bool
}

// eventsLocked returns the stream's event channel, making it on first use
// (most streams never pause, and never need one). The caller holds w.mu.
func (s *Stream) eventsLocked() chan Event {
	if s.events == nil {
		s.events = make(chan Event, 4)
	}
	return s.events
}

// NewStream returns a stream on worker i, or on the next worker round-robin
// when i < 0. The guest's context is created at the first callback (as Envoy
// does). With FailReload, a failed worker is recreated here.
func (h *Host) NewStream(i int) (*Stream, error) {
	w, err := h.pickWorker(i)
	if err != nil {
		return nil, err
	}
	return &Stream{w: w, inCallback: -1}, nil
}

// Worker is the index of the stream's worker.
func (s *Stream) Worker() int { return s.w.idx }

// ID is the guest's context id (0 before the first callback).
func (s *Stream) ID() uint32 {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.id
}

// SetProperty sets a property the guest reads with proxy_get_property, by
// dotted path ("source.address",
// "metadata.filter_metadata.envoy.filters.http.jwt_authn.jwt_payload") and
// serialised value (PropertyString, PropertyInt, ...).
func (s *Stream) SetProperty(path string, value []byte) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.setProp(path, append([]byte(nil), value...))
}

// SetDownstream sets source.address ("ip:port") and source.port, and the
// destination ones when local is not empty.
func (s *Stream) SetDownstream(remote, local string) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	set := func(prefix, addr string) {
		s.setProp(prefix+".address", []byte(addr))
		if port, ok := portOf(addr); ok {
			s.setProp(prefix+".port", PropertyInt(port))
		}
	}
	set("source", remote)
	if local != "" {
		set("destination", local)
	}
}

// setProp stores a property; the caller holds w.mu.
func (s *Stream) setProp(key string, value []byte) {
	if s.props == nil {
		s.props = map[string][]byte{}
	}
	s.props[key] = value
}

func portOf(addr string) (int64, bool) {
	i := len(addr) - 1
	for i >= 0 && addr[i] >= '0' && addr[i] <= '9' {
		i--
	}
	if i < 0 || addr[i] != ':' || i == len(addr)-1 || len(addr)-i > 6 {
		return 0, false
	}
	var n int64
	for _, c := range addr[i+1:] {
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// begin prepares a callback: the caller holds w.mu.
func (s *Stream) begin() error {
	w := s.w
	if s.finished {
		return ErrStreamFinished
	}
	if err := w.usable(); err != nil {
		return err
	}
	w.cur, w.effective = s, 0
	if !s.created {
		s.id = w.newContextID()
		w.streams[s.id] = s
		s.created = true
		if _, err := w.call("proxy_on_context_create", w.fns.contextCreate, uint64(s.id), uint64(w.rootID)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stream) end() {
	s.w.cur, s.w.effective = nil, 0
}

func bool32(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// enter starts a stream callback (the caller holds w.mu): done is true
// when the callback is not to run, with its result (the stream already
// answered locally) or error. Otherwise the caller must call s.end.
func (s *Stream) enter() (res Result, done bool, err error) {
	if s.local != nil || s.reset {
		return Result{Action: ActionPause, LocalResponse: s.local, Reset: s.reset}, true, nil
	}
	if err := s.begin(); err != nil {
		return Result{}, true, err
	}
	return Result{}, false, nil
}

// result turns a callback's answer into a Result.
func (s *Stream) result(r uint64, err error) (Result, error) {
	if err != nil {
		return Result{}, err
	}
	res := Result{Action: Action(uint32(r)), LocalResponse: s.local, Reset: s.reset}
	if s.reset {
		res.Action = ActionPause
		return res, nil
	}
	if s.continuedInCallback && res.Action == ActionPause && s.local == nil {
		// Envoy defers proxy_continue_stream to after the VM call
		// (Context::continueStream: addAfterVmCallAction), so a filter
		// that continues its own direction and answers Pause is resumed
		// at once.
		res.Action = ActionContinue
	}
	if s.local != nil || res.Action > ActionPause {
		// Envoy stops the filter chain after a local reply, and treats
		// unknown answers as a stop.
		res.Action = ActionPause
	}
	return res, nil
}

// phase names a stream callback for deliver.
type phase uint8

const (
	phaseRequestHeaders phase = iota
	phaseRequestBody
	phaseRequestTrailers
	phaseResponseHeaders
	phaseResponseBody
	phaseResponseTrailers
)

// dir is the direction of a phase.
func (ph phase) dir() StreamType {
	if ph >= phaseResponseHeaders {
		return StreamResponse
	}
	return StreamRequest
}

// deliver runs one stream callback: it locks the worker and calls
// deliverLocked.
func (s *Stream) deliver(ph phase, headers [][2]string, chunk []byte, endOfStream bool) (Result, error) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	return s.deliverLocked(ph, headers, chunk, endOfStream)
}

// deliverLocked runs one stream callback (the caller holds w.mu): it
// enters, sets what the guest will read (headers, or a body chunk, appended
// to the buffered body after a pause as Envoy's StopIterationAndBuffer
// does), calls the guest and turns its answer into a Result. While the
// direction is stopped by a paused headers callback, body and trailers are
// held instead (Result.Held), as Envoy's filter manager does. (A switch, not
// closures: those would be allocated on every callback.)
func (s *Stream) deliverLocked(ph phase, headers [][2]string, chunk []byte, endOfStream bool) (Result, error) {
	w := s.w
	if res, done, err := s.enter(); done {
		return res, err
	}
	defer s.end()
	dir := ph.dir()
	if d := s.dirs[dir]; d != nil && d.stopAll {
		switch ph {
		case phaseRequestBody, phaseResponseBody:
			d.held = append(d.held, chunk...)
			d.heldSeen, d.heldEnd = true, endOfStream
			return Result{Action: ActionPause, Held: true}, nil
		case phaseRequestTrailers, phaseResponseTrailers:
			d.heldTrailers = append([][2]string{}, headers...)
			return Result{Action: ActionPause, Held: true}, nil
		}
	}
	if s.events != nil {
		s.dropStaleContinue(dir)
	}
	var (
		name      string
		fn        api.Function
		size      int
		buffering *bool
		args      = 3
	)
	switch ph {
	case phaseRequestHeaders:
		s.reqHeaderStore.set(headers)
		s.reqHeaders = &s.reqHeaderStore
		name, fn, size = "proxy_on_request_headers", w.fns.requestHeaders, len(s.reqHeaders.pairs)
	case phaseRequestBody:
		// decodeData hands the filter this body again
		// (request_body_buffer_), even after a proxy_continue_stream.
		s.reqBodyGone = false
		s.reqBody = bufferChunk(s.reqBody, chunk, s.reqBuffering)
		name, fn, size, buffering = "proxy_on_request_body", w.fns.requestBody, len(s.reqBody), &s.reqBuffering
	case phaseRequestTrailers:
		s.reqTrailers = newHeaderMap(headers)
		name, fn, size, args = "proxy_on_request_trailers", w.fns.requestTrailers, len(s.reqTrailers.pairs), 2
	case phaseResponseHeaders:
		s.respHeaderStore.set(headers)
		s.respHeaders = &s.respHeaderStore
		name, fn, size = "proxy_on_response_headers", w.fns.responseHeaders, len(s.respHeaders.pairs)
	case phaseResponseBody:
		s.respBody = bufferChunk(s.respBody, chunk, s.respBuffering)
		name, fn, size, buffering = "proxy_on_response_body", w.fns.responseBody, len(s.respBody), &s.respBuffering
	case phaseResponseTrailers:
		s.respTrailers = newHeaderMap(headers)
		name, fn, size, args = "proxy_on_response_trailers", w.fns.responseTrailers, len(s.respTrailers.pairs), 2
	}
	s.inCallback, s.continuedInCallback = int(dir), false
	var (
		r   uint64
		err error
	)
	if args == 2 {
		r, err = w.call(name, fn, uint64(s.id), uint64(size))
	} else {
		r, err = w.call(name, fn, uint64(s.id), uint64(size), bool32(endOfStream))
	}
	s.inCallback = -1
	continuedSelf := s.continuedInCallback && Action(uint32(r)) == ActionContinue
	res, err := s.result(r, err)
	if err != nil {
		return res, err
	}
	if continuedSelf {
		w.continueMisuse(dir, "from a callback that answered Continue")
	}
	s.paused[dir] = res.Action == ActionPause
	if buffering != nil {
		*buffering = res.Action == ActionPause
	}
	if res.LocalResponse != nil || res.Reset {
		return res, nil
	}
	switch {
	case res.Action == ActionPause && (ph == phaseRequestHeaders || ph == phaseResponseHeaders) &&
		!w.h.cfg.AllowOnHeadersStopIteration:
		// proxy-wasm-cpp-host src/context.cc
		// convertVmCallResultToFilterHeadersStatus: StopIteration from a
		// headers callback becomes StopAllIterationAndWatermark unless the
		// plugin allows it (Envoy >= 1.35
		// PluginConfig.allow_on_headers_stop_iteration).
		if s.dirs[dir] == nil {
			s.dirs[dir] = &dirState{}
		}
		s.dirs[dir].stopAll = true
	case res.Action == ActionContinue && dir == StreamResponse:
		// A response callback that continues lets the response headers
		// (and what it holds) go downstream.
		s.respHeadersSent = true
	}
	return res, nil
}

// dropStaleContinue discards queued EventContinue events for dir: they
// resumed an earlier pause of that direction, not the callback about to
// run. The caller holds w.mu.
func (s *Stream) dropStaleContinue(dir StreamType) {
	var keep []Event
	for {
		select {
		case ev := <-s.events:
			if ev.Kind != EventContinue || ev.Stream != dir {
				keep = append(keep, ev)
			}
			continue
		default:
		}
		break
	}
	for _, ev := range keep {
		s.notify(ev)
	}
}

// deliverHeld delivers, after the filter resumed dir, the body and
// trailers Envoy's filter manager held while the direction was stopped
// (filter_manager.cc: after a StopAll, commonContinue iterates the
// buffered data from the current filter). delivered is false when nothing
// was held. The caller holds w.mu.
func (s *Stream) deliverHeld(dir StreamType) (res Result, delivered bool, err error) {
	d := s.dirs[dir]
	if d == nil || !d.resumed {
		return Result{}, false, nil
	}
	d.resumed = false
	body, seen, end, trailers := d.held, d.heldSeen, d.heldEnd, d.heldTrailers
	d.held, d.heldSeen, d.heldEnd, d.heldTrailers = nil, false, false, nil
	bodyPh, trailersPh := phaseRequestBody, phaseRequestTrailers
	if dir == StreamResponse {
		bodyPh, trailersPh = phaseResponseBody, phaseResponseTrailers
	}
	res = Result{Action: ActionContinue}
	if seen {
		if res, err = s.deliverLocked(bodyPh, nil, body, end && trailers == nil); err != nil {
			return res, true, err
		}
	}
	if trailers != nil && res.LocalResponse == nil && !res.Reset {
		res, err = s.deliverLocked(trailersPh, trailers, nil, false)
	}
	return res, true, err
}

// bufferChunk appends chunk to the buffered body, or starts a new one.
func bufferChunk(body, chunk []byte, buffering bool) []byte {
	if buffering {
		return append(body, chunk...)
	}
	return append([]byte(nil), chunk...)
}

// RequestHeaders delivers the request headers (with pseudo-headers :method,
// :path, :authority, :scheme) to proxy_on_request_headers.
func (s *Stream) RequestHeaders(headers [][2]string, endOfStream bool) (Result, error) {
	return s.deliver(phaseRequestHeaders, headers, nil, endOfStream)
}

// RequestBody delivers a chunk of the request body. If the previous body
// callback paused (Envoy's StopIterationAndBuffer), the chunk is appended to
// the buffered body; otherwise it replaces it. After a Continue, the body to
// forward is RequestBodyBytes.
func (s *Stream) RequestBody(chunk []byte, endOfStream bool) (Result, error) {
	return s.deliver(phaseRequestBody, nil, chunk, endOfStream)
}

// RequestTrailers delivers the request trailers.
func (s *Stream) RequestTrailers(trailers [][2]string) (Result, error) {
	return s.deliver(phaseRequestTrailers, trailers, nil, false)
}

// ResponseHeaders delivers the response headers (with :status).
func (s *Stream) ResponseHeaders(headers [][2]string, endOfStream bool) (Result, error) {
	return s.deliver(phaseResponseHeaders, headers, nil, endOfStream)
}

// ResponseBody delivers a chunk of the response body (buffering as RequestBody).
func (s *Stream) ResponseBody(chunk []byte, endOfStream bool) (Result, error) {
	return s.deliver(phaseResponseBody, nil, chunk, endOfStream)
}

// ResponseTrailers delivers the response trailers.
func (s *Stream) ResponseTrailers(trailers [][2]string) (Result, error) {
	return s.deliver(phaseResponseTrailers, trailers, nil, false)
}

// Finish ends the stream as Envoy does: proxy_on_log (access-log phase),
// then proxy_on_done and proxy_on_delete. proxy_on_delete is always
// attempted once the context exists, so the guest does not leak it.
func (s *Stream) Finish() error {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.finished {
		return nil
	}
	s.finished = true
	if !s.created {
		return nil
	}
	// One deferred cleanup, not two: with Finish's returns, two defers
	// would no longer be open-coded (a runtime defer record per stream).
	defer func() {
		s.end()
		delete(w.streams, s.id)
	}()
	return s.finishLocked()
}

// finishLocked runs proxy_on_log, proxy_on_done and proxy_on_delete (the
// caller holds w.mu).
func (s *Stream) finishLocked() error {
	w := s.w
	if err := w.usable(); err != nil {
		return err
	}
	w.cur, w.effective = s, 0
	s.logPhase = true
	if _, err := w.call("proxy_on_log", w.fns.log, uint64(s.id)); err != nil {
		return err
	}
	s.logPhase = false
	w.cur, w.effective = s, 0
	if _, err := w.call("proxy_on_done", w.fns.done, uint64(s.id)); err != nil {
		return err
	}
	w.cur, w.effective = s, 0
	_, err := w.call("proxy_on_delete", w.fns.delete, uint64(s.id))
	return err
}

// Wait blocks until the paused stream is resumed from outside its own
// callbacks (proxy_continue_stream, proxy_close_stream, or a local response
// sent from an http_call callback), the VM fails, or ctx ends. When the
// filter resumes a direction whose body the host held (its headers callback
// paused: StopAllIterationAndWatermark), Wait delivers the held body and
// trailers to the filter first, and keeps waiting if it pauses again. A
// local reply after the response headers went downstream is a reset:
// EventClose.
func (s *Stream) Wait(ctx context.Context) (Event, error) {
	for {
		ev, err := s.waitEvent(ctx)
		if err != nil || ev.Kind != EventContinue {
			return ev, err
		}
		s.w.mu.Lock()
		res, delivered, err := s.deliverHeld(ev.Stream)
		s.w.mu.Unlock()
		switch {
		case err != nil:
			return Event{}, err
		case !delivered:
			return ev, nil
		case res.Reset:
			return Event{Kind: EventClose, Stream: ev.Stream}, nil
		case res.LocalResponse != nil:
			return Event{Kind: EventLocalResponse, LocalResponse: res.LocalResponse}, nil
		case res.Action == ActionContinue:
			return ev, nil
		}
	}
}

func (s *Stream) waitEvent(ctx context.Context) (Event, error) {
	s.w.mu.Lock()
	events := s.eventsLocked()
	s.w.mu.Unlock()
	select {
	case ev := <-events:
		return ev, nil
	default:
	}
	select {
	case ev := <-events:
		return ev, nil
	case <-s.w.failCh:
		s.w.mu.Lock()
		defer s.w.mu.Unlock()
		select {
		case ev := <-events:
			return ev, nil
		default:
		}
		if err := s.w.usable(); err != nil {
			return Event{}, err
		}
		return Event{}, ErrClosed
	case <-ctx.Done():
		return Event{}, fmt.Errorf("wait for stream %d: %w", s.id, ctx.Err())
	}
}

// ResponseHeadersSent reports whether the response headers went downstream
// (a response callback continued, or the filter resumed the response): a
// local reply after that resets the stream.
func (s *Stream) ResponseHeadersSent() bool {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.respHeadersSent
}

// Reset reports whether the stream was reset (Result.Reset).
func (s *Stream) Reset() bool {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.reset
}

// notify is called with w.mu held.
func (s *Stream) notify(ev Event) {
	select {
	case s.eventsLocked() <- ev:
	default: // a waiter that never reads; drop rather than block the VM
	}
}

// RequestHeaderPairs returns the (possibly modified) request headers.
func (s *Stream) RequestHeaderPairs() [][2]string { return s.lockedPairs(&s.reqHeaders) }

// RequestTrailerPairs returns the (possibly modified) request trailers.
func (s *Stream) RequestTrailerPairs() [][2]string { return s.lockedPairs(&s.reqTrailers) }

// ResponseHeaderPairs returns the (possibly modified) response headers.
func (s *Stream) ResponseHeaderPairs() [][2]string { return s.lockedPairs(&s.respHeaders) }

// ResponseTrailerPairs returns the (possibly modified) response trailers.
func (s *Stream) ResponseTrailerPairs() [][2]string { return s.lockedPairs(&s.respTrailers) }

func (s *Stream) lockedPairs(m **headerMap) [][2]string {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return (*m).clone()
}

// RequestHeader returns the first value of a request header.
func (s *Stream) RequestHeader(name string) (string, bool) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if s.reqHeaders == nil {
		return "", false
	}
	return s.reqHeaders.get(name)
}

// ResponseHeader returns the first value of a response header.
func (s *Stream) ResponseHeader(name string) (string, bool) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if s.respHeaders == nil {
		return "", false
	}
	return s.respHeaders.get(name)
}

// RequestBodyBytes returns the current (possibly replaced) request body.
func (s *Stream) RequestBodyBytes() []byte {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return append([]byte(nil), s.reqBody...)
}

// ResponseBodyBytes returns the current (possibly replaced) response body.
func (s *Stream) ResponseBodyBytes() []byte {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return append([]byte(nil), s.respBody...)
}

// LocalResponse returns the local response the guest sent, if any.
func (s *Stream) LocalResponse() *LocalResponse {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.local
}
