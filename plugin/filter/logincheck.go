package filter

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// The login request side: the pre-login check.
//
// Under Envoy's defaults a paused headers callback becomes
// StopAllIterationAndWatermark (no body callbacks until the filter resumes),
// so the login's headers Continue and its body is held (ActionPause, i.e.
// StopIterationAndBuffer) until end of stream; then one callout
// (protocol.PathLoginCheck) decides, and its callback resumes the request or
// answers locally. The router has the headers by then; a local reply ends
// the stream and Envoy's router resets the upstream request it had started
// (source/common/router/router.cc, Filter::onDestroy: "Reset any in-flight
// upstream requests"), so the buffered body, the password, is never sent
// to the app. A login without a body (end of stream on the headers) is
// decided on its headers: paused there, resumed from the callback.

// maxCheckUserAgent bounds the user agent sent with the check.
const maxCheckUserAgent = 512

// loginBody holds the login body until its end, then checks the login.
func (h *httpContext) loginBody(bodySize int, endOfStream bool) types.Action {
	if bodySize > authflow.MaxBodyLen {
		// A login body the filter cannot read could name an identifier the
		// check never sees: refuse it.
		h.refuse(413, "invalid_request", "Login request body too large")
		return types.ActionPause
	}
	if !endOfStream {
		return types.ActionPause // buffer until the whole body is here
	}
	if bodySize > 0 {
		if b, err := proxywasm.GetHttpRequestBody(0, bodySize); err == nil {
			h.requestBody = b
		}
	}
	if h.plugin.cfg.Login.IdentifierPath != "" {
		if err := authflow.CheckLoginBody(h.requestBody, header("content-type"), h.plugin.cfg.Login.IdentifierPath); err != nil {
			h.refuse(400, "invalid_request", "Login request body is unreadable")
			return types.ActionPause
		}
	}
	return h.loginCheck()
}

// loginIdentifier is the login name the check and the failed-login report
// count (computed once from the held body).
func (h *httpContext) loginIdentifier() string {
	if !h.loginIdentRead {
		h.loginIdent = authflow.LoginIdentifier(h.requestBody, header("content-type"), h.plugin.cfg.Login.IdentifierPath)
		h.loginIdentRead = true
	}
	return h.loginIdent
}

// loginCheck asks sessionsvc whether the login may reach the app.
func (h *httpContext) loginCheck() types.Action {
	p := h.plugin
	ua := header("user-agent")
	if len(ua) > maxCheckUserAgent {
		ua = ua[:maxCheckUserAgent]
	}
	body := authflow.EncodeLoginCheck(protocol.LoginCheck{IP: h.clientIP(), Identifier: h.loginIdentifier(), UserAgent: ua})
	err := p.callout("POST", protocol.PathLoginCheck, body, func(status int, resp []byte, err error) {
		h.waiting = false
		if err == nil && status == 200 {
			ans, perr := authflow.ParseLoginCheckResponse(resp)
			if perr == nil {
				if ans.Decision == protocol.DecisionDeny {
					h.refuseLogin(ans)
					return
				}
				_ = proxywasm.ResumeHttpRequest()
				return
			}
			err = perr
		}
		if err == nil && status == 404 {
			// A sessionsvc without the check (older): the response side still decides.
			_ = proxywasm.ResumeHttpRequest()
			return
		}
		if h.loginCheckUnavailable(status, resp, err) {
			_ = proxywasm.ResumeHttpRequest()
		}
	})
	if err != nil {
		if h.loginCheckUnavailable(0, nil, err) {
			return types.ActionContinue
		}
		return types.ActionPause
	}
	h.waiting = true
	return types.ActionPause
}

// refuseLogin answers a denied check: 429 locked or 403 policy.
func (h *httpContext) refuseLogin(ans protocol.LoginCheckResponse) {
	p := h.plugin
	r := authflow.LoginRefusal(ans, decide.ErrorBody)
	p.metrics.loginsDenied.Increment(1)
	p.metrics.refusal(r.Reason)
	if err := proxywasm.SendHttpResponse(uint32(r.Status), r.Headers, r.Body, -1); err != nil {
		proxywasm.LogErrorf("meshsession: send local response: %v", err)
	}
}

// loginCheckUnavailable applies login_unavailable_policy when the check
// could not be made; true means let the login go on.
func (h *httpContext) loginCheckUnavailable(status int, resp []byte, err error) bool {
	p := h.plugin
	proxywasm.LogWarnf("meshsession: pre-login check failed (sessionsvc status %d, %v): %s; policy %s",
		status, err, snippet(resp), p.cfg.LoginUnavailablePolicy)
	if p.cfg.LoginUnavailablePolicy == config.LoginDeny {
		h.refuse(503, decide.ReasonStale, "Session service unavailable, try again")
		return false
	}
	return true
}

// OnHttpRequestTrailers: a login or refresh body that ends with trailers
// (HTTP/2) never reaches end of stream in the body callbacks, and trailers
// that Continue would release the held body, unchecked, to the app. Such a
// login is refused, and so is such a refresh when the refresh token is read
// from the body; other routes pass.
func (h *httpContext) OnHttpRequestTrailers(numTrailers int) types.Action {
	switch {
	case h.route == decide.RouteLogin:
		h.refuse(400, "invalid_request", "Login requests with trailers are not supported")
	case h.route == decide.RouteRefresh && h.plugin.cfg.Refresh.RequestTokenPath != "":
		h.refuse(400, "invalid_request", "Refresh requests with trailers are not supported")
	default:
		return types.ActionContinue
	}
	return types.ActionPause
}
