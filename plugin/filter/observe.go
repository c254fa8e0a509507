package filter

import (
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// The response side of the login and refresh routes.
//
// It works on Envoy's defaults (every release, Istio's WasmPlugin, Envoy
// Gateway), where a headers callback answering Pause is turned into
// StopAllIterationAndWatermark and no body callback comes until the filter
// resumes the stream itself: the response headers Continue; the body
// callbacks answer Pause (StopIterationAndBuffer) until the end of the
// stream; the whole answer is read, reported to sessionsvc, and released
// when sessionsvc allows it. A refusal then comes after the headers went
// downstream: the held body is replaced (the token never leaves the proxy)
// and the local reply makes Envoy reset the stream. The client sees the
// upstream's status line and headers, then a reset (HTTP/1.1: the
// connection closes before the body's end; HTTP/2: RST_STREAM), never the
// token.
//
// With headers_stop_iteration (Envoy >= 1.35 with
// allow_on_headers_stop_iteration: true) the headers are held too and a
// refusal is a clean local reply (403 with the JSON error body).
//
// An answer without a body is judged at its headers: pausing them is safe
// on every host, as the callout's answer resumes them.

// observeRequest prepares a login or refresh answer in the request phase:
// it asks the app for an answer the filter can read (no accept-encoding)
// and keeps the request values the response side needs.
func (h *httpContext) observeRequest() {
	_ = proxywasm.RemoveHttpRequestHeader("accept-encoding")
	h.ua = header("user-agent")
	h.lang = header("accept-language")
	h.ip = h.clientIP()
}

func (h *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	if h.revoking {
		return h.revoked()
	}
	if h.route != decide.RouteLogin && h.route != decide.RouteRefresh {
		return types.ActionContinue
	}
	v, _ := proxywasm.GetHttpResponseHeader(":status")
	h.status, _ = strconv.Atoi(v)
	h.encoding, _ = proxywasm.GetHttpResponseHeader("content-encoding")
	if name := h.plugin.cfg.Refresh.RequestTokenCookie; name != "" && h.status/100 == 2 {
		// An app that keeps the refresh token in a cookie (Strapi v5's
		// strapi_up_refresh) sets it here, not in the body.
		h.setRefresh = authflow.SetCookieValue(responseHeaderValues("set-cookie"), name)
	}
	if endOfStream || h.status/100 != 2 {
		// Nothing to read in the body: judge the answer now (a failed
		// login is reported; a refused refresh is reported for reuse).
		return h.observe(nil)
	}
	if h.plugin.cfg.HeadersStopIteration {
		h.plugin.holdHeaders(h)
		return types.ActionPause // StopIteration: the body callbacks still come
	}
	h.headersSent = true
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if h.waiting {
		// A revoking route's answer waits for a sync (timing.go). Envoy
		// delivers no body while the headers are held; a host that does
		// gets it held too.
		return types.ActionPause
	}
	if h.route != decide.RouteLogin && h.route != decide.RouteRefresh {
		return types.ActionContinue
	}
	h.headersHeld = false // the host passes the held headers' body on
	if h.observed {
		if h.pending {
			return types.ActionPause // sessionsvc has not answered yet
		}
		return types.ActionContinue
	}
	if bodySize > authflow.MaxBodyLen {
		h.respTooLarge = true
	}
	if !endOfStream {
		// Hold every chunk: nothing of the answer leaves before it is
		// judged (Envoy buffers, up to its buffer limit).
		return types.ActionPause
	}
	return h.observe(h.readAnswer(bodySize))
}

// OnHttpResponseTrailers ends an answer whose body callbacks never saw the
// end of the stream (trailers follow the body).
func (h *httpContext) OnHttpResponseTrailers(numTrailers int) types.Action {
	if h.route != decide.RouteLogin && h.route != decide.RouteRefresh {
		return types.ActionContinue
	}
	h.headersHeld = false
	if h.observed {
		if h.pending {
			return types.ActionPause
		}
		return types.ActionContinue
	}
	return h.observe(h.readAnswer(authflow.MaxBodyLen + 1))
}

// heldAnswer is an answer whose headers the filter holds, since tick n.
type heldAnswer struct {
	h     *httpContext
	since uint64
}

// holdHeaders notes a login/refresh answer whose headers are held under
// headers_stop_iteration.
func (p *pluginContext) holdHeaders(h *httpContext) {
	if p.heldHeaders == nil {
		p.heldHeaders = make(map[uint32]heldAnswer)
	}
	h.headersHeld = true
	p.heldHeaders[h.contextID] = heldAnswer{h: h, since: p.ticks}
}

// releaseStalledHeaders guards against headers_stop_iteration on a host
// that does not pass StopIteration through (Envoy without
// allow_on_headers_stop_iteration: no body callback comes until the
// filter resumes): an answer whose headers are still held two ticks later
// with no body seen is resumed, and judged as on Envoy's defaults (a
// refusal is then a reset). Called on every tick.
func (p *pluginContext) releaseStalledHeaders() {
	for id, e := range p.heldHeaders {
		h := e.h
		if h.contextID != id || !h.headersHeld || h.observed {
			delete(p.heldHeaders, id) // body seen, judged, or the context is gone
			continue
		}
		if p.ticks-e.since < 2 {
			continue
		}
		delete(p.heldHeaders, id)
		if proxywasm.SetEffectiveContext(id) != nil {
			continue
		}
		h.headersHeld, h.headersSent = false, true
		p.metrics.heldHeadersReleased.Increment(1)
		proxywasm.LogWarnf("meshsession: headers_stop_iteration is set but the host sent no body after held response headers: " +
			"resuming (set allow_on_headers_stop_iteration: true in Envoy >= 1.35, or remove headers_stop_iteration)")
		_ = proxywasm.ResumeHttpResponse()
	}
}

// readAnswer reads the held answer (nil when it is over the limit).
func (h *httpContext) readAnswer(size int) []byte {
	if h.respTooLarge || size <= 0 {
		return nil
	}
	if size > authflow.MaxBodyLen+1 {
		size = authflow.MaxBodyLen + 1
	}
	b, _ := proxywasm.GetHttpResponseBody(0, size)
	if len(b) > authflow.MaxBodyLen {
		h.respTooLarge = true
		return nil
	}
	return b
}

// observe judges a login or refresh answer: Continue, or Pause while
// sessionsvc is asked (its answer releases or refuses it).
func (h *httpContext) observe(body []byte) types.Action {
	h.observed = true
	var act types.Action
	if h.route == decide.RouteLogin {
		act = h.observeLogin(body)
	} else {
		act = h.observeRefresh(body)
	}
	if act == types.ActionContinue {
		h.headersSent = true
	}
	return act
}

// hold marks the answer held by a sessionsvc call.
func (h *httpContext) hold() types.Action {
	h.pending = true
	return types.ActionPause
}

// release lets the held answer go on (from a callout's answer).
func (h *httpContext) release() {
	h.pending = false
	h.headersSent = true
	_ = proxywasm.ResumeHttpResponse()
}

// deny refuses the held answer. While its headers are held the client gets
// a clean local reply; once they went out the body is replaced first (the
// token never reaches the client) and Envoy resets the stream on the local
// reply (filter_manager.cc sendLocalReply: "Prior headers have already
// been sent").
func (h *httpContext) deny(status int, reason, message string) {
	h.pending = false
	if h.headersSent {
		_ = proxywasm.ReplaceHttpResponseBody(decide.ErrorBody(status, message, reason))
	}
	h.refuse(status, reason, message)
}

func (h *httpContext) observeLogin(body []byte) types.Action {
	p := h.plugin
	cfg := p.cfg
	if h.status/100 != 2 {
		if h.status == 400 || h.status == 401 || h.status == 403 {
			h.reportFailedLogin()
		}
		return types.ActionContinue
	}
	login, why := authflow.ReadLogin(authflow.Answer{Body: body, ContentEncoding: h.encoding, TooLarge: h.respTooLarge}, cfg.Login)
	if why != "" {
		return h.unreadableLogin(why)
	}
	if login.RefreshToken == "" {
		login.RefreshToken = h.setRefresh
	}
	reg := authflow.Register(login, h.names(), h.ip, h.ua, cfg.Login.Path, locale(h.lang))
	reg.Identifier = h.loginIdentifier()
	return h.askAboutLogin(protocol.PathSessions, authflow.EncodeRegister(reg), func(resp []byte) error {
		ans, err := authflow.ParseRegisterResponse(resp)
		switch {
		case err != nil:
			return err
		case ans.Decision == protocol.DecisionDeny:
			h.denyLoginAnswer(ans.Reason, ans.Message)
		default:
			p.metrics.loginsRegistered.Increment(1)
			h.release()
		}
		return nil
	})
}

// askAboutLogin posts body to sessionsvc at path and holds the login answer
// until it replies: onReply acts on a 2xx reply (release or refuse the
// answer); a failed call, or a reply onReply cannot read, goes to
// login_unavailable_policy.
func (h *httpContext) askAboutLogin(path string, body []byte, onReply func(resp []byte) error) types.Action {
	err := h.plugin.callout("POST", path, body, func(status int, resp []byte, err error) {
		if err == nil && status/100 == 2 {
			if err = onReply(resp); err == nil {
				return
			}
		}
		h.loginUnavailable(status, resp, err, true)
	})
	if err != nil {
		return h.loginUnavailable(0, nil, err, false)
	}
	return h.hold()
}

// denyLoginAnswer replaces a held login answer with sessionsvc's refusal:
// 403 with its reason, and its message (the reason's own when it sent none).
func (h *httpContext) denyLoginAnswer(reason, msg string) {
	h.plugin.metrics.loginsDenied.Increment(1)
	if msg == "" {
		msg = decide.Message(reason)
	}
	h.deny(403, reason, msg)
}

// unreadableLogin handles a 2xx login answer no session can be registered
// from: sessionsvc refuses it when a login policy is active (the token was
// never checked and must not reach the client), else it passes,
// unregistered, counted and logged.
func (h *httpContext) unreadableLogin(why string) types.Action {
	p := h.plugin
	cfg := p.cfg
	body := authflow.EncodeUnreadable(protocol.UnreadableLogin{IP: h.ip, UserAgent: h.ua, Status: h.status, Why: why, Route: cfg.Login.Path})
	return h.askAboutLogin(protocol.PathUnreadable, body, func(resp []byte) error {
		ans, err := authflow.ParseUnreadableResponse(resp)
		switch {
		case err != nil:
			return err
		case ans.Decision == protocol.DecisionDeny:
			proxywasm.LogWarnf("meshsession: login answered %d but its body cannot be read (%s): refused, a login policy is active", h.status, why)
			h.denyLoginAnswer(ans.Reason, ans.Message)
		default:
			p.metrics.loginsUnregistered.Increment(1)
			proxywasm.LogWarnf("meshsession: login answered %d but its body cannot be read (%s): passed unregistered, no login policy is active", h.status, why)
			h.release()
		}
		return nil
	})
}

func (h *httpContext) observeRefresh(body []byte) types.Action {
	p := h.plugin
	cfg := p.cfg
	if h.presented == "" {
		return types.ActionContinue // nothing names the session
	}
	var r authflow.Refresh
	if h.status/100 == 2 {
		var err error
		if r, err = authflow.ParseRefresh(body, cfg.Refresh); err != nil {
			proxywasm.LogWarnf("meshsession: refresh answered %d but its body cannot be read: %v", h.status, err)
		}
		if r.RefreshToken == "" {
			r.RefreshToken = h.setRefresh
		}
	}
	call := authflow.RefreshCall(h.presented, h.status, r, h.names(), h.ip, h.ua)
	err := p.callout("POST", protocol.PathTokens, authflow.EncodeRefresh(call), func(status int, resp []byte, err error) {
		if err == nil && status/100 == 2 {
			if ans, perr := authflow.ParseRefreshResponse(resp); perr == nil && ans.Decision == protocol.DecisionDeny {
				p.metrics.refreshDenied.Increment(1)
				p.sync.soon()
				h.deny(401, ans.Reason, decide.Message(ans.Reason))
				return
			}
		} else if status != 404 {
			proxywasm.LogWarnf("meshsession: refresh not recorded by sessionsvc (status %d, %v): %s", status, err, snippet(resp))
		}
		h.release()
	})
	if err != nil {
		proxywasm.LogWarnf("meshsession: dispatch refresh report: %v", err)
		return types.ActionContinue
	}
	return h.hold()
}

// responseHeaderValues are the values of every response header named name
// (Set-Cookie comes once per cookie).
func responseHeaderValues(name string) []string {
	hs, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		return nil
	}
	var out []string
	for _, kv := range hs {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out
}
