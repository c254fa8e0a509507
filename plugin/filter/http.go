package filter

import (
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/authflow"
	"github.com/meshsession/meshsession/plugin/core/clientip"
	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/protostruct"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// httpContext is one HTTP stream.
type httpContext struct {
	types.DefaultHttpContext
	plugin    *pluginContext
	contextID uint32

	route       decide.Route
	requestBody []byte // login/refresh request body, accumulated up to authflow.MaxBodyLen
	presented   string // refresh: the refresh token the client presented
	status      int    // upstream response status on observed routes
	waiting     bool   // a callout holds the request (logout): keep buffering its body

	// Login and refresh answers (the response side, see observe.go).
	// Request values are read in the request phase: Envoy drops the request
	// maps once any proxy_continue_stream ran.
	ua, lang, ip string
	encoding     string // the answer's content-encoding
	setRefresh   string // the refresh token the answer sets in request_token_cookie
	respTooLarge bool   // the answer's body went over authflow.MaxBodyLen
	headersSent  bool   // the answer's headers went downstream (Continue)
	headersHeld  bool   // headers_stop_iteration: its headers are held, no body seen yet
	observed     bool   // the answer was judged (a callout may still hold it)
	pending      bool   // a sessionsvc call holds the answer

	loginIdent     string // login route: the identifier the check and the failure report count
	loginIdentRead bool

	held     bool // its request headers wait for the worker's first state (timing.go)
	heldEOS  bool // the request headers ended the stream
	revoking bool // on a revoking route: a 2xx answer waits for a sync (timing.go)
	// inCallback: revoked is in the stream's own callback (a waiter run
	// synchronously must not resume the stream from inside it)
	inCallback bool
}

func header(name string) string {
	v, _ := proxywasm.GetHttpRequestHeader(name)
	return v
}

// requestHeaderNames are the lengths of every name OnHttpRequestHeaders'
// loop compares: its header iterator skips the pairs of other lengths.
func requestHeaderNames(cfg *config.Config) nameLens {
	return lensOf(":path", ":method", "authorization", "cookie", cfg.IdentityHeaders.SessionID, cfg.IdentityHeaders.UserID)
}

func (h *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	p := h.plugin
	cfg := p.cfg
	ih := cfg.IdentityHeaders
	t := now()
	// The request and the header iterator are the plugin context's, reset
	// field by field (see plugin/core/decide on struct copies in Wasm).
	req := &p.req
	req.Reset()
	// One host call for all headers (every call that returns data costs a
	// proxy_on_memory_allocate round trip into the guest), read into a
	// reused buffer: the values below are valid until the end of this
	// callback only.
	var seen identitySeen
	hdrs := &p.hdrs
	if !requestHeaders(hdrs) {
		// The host could not hand the headers over (larger than the glue
		// reads): the token cannot be seen, so nothing can be vouched for.
		h.refuse(431, decide.ReasonHeadersTooLarge, decide.Message(decide.ReasonHeadersTooLarge))
		return types.ActionPause
	}
	for {
		k, v, ok := hdrs.next()
		if !ok {
			break
		}
		switch {
		case k == ":path":
			req.Path = v
		case k == ":method":
			req.Method = v
		case sameHeaderName(k, "authorization"):
			// Every entry counts: a repeated header reaches the filter as
			// several entries or joined into one (see AddAuthorization).
			// Names are matched without case, as the app's server may.
			req.AddAuthorization(v)
		case sameHeaderName(k, "cookie"):
			req.AddCookie(v, cfg.TokenCookie)
		}
		if ih.SessionID != "" && sameHeaderName(k, ih.SessionID) {
			seen.sessionID++
		}
		if ih.UserID != "" && sameHeaderName(k, ih.UserID) {
			seen.userID++
		}
	}
	if cfg.Verify.Mode == config.ModeJWTAuthnMetadata {
		req.Metadata = h.jwtAuthnPayload()
	}
	h.route = p.engine.Route(req.Method, req.Path)
	if req.MayHoldToken() {
		// Only a request that may carry a token is decided against the
		// revocation state, its freshness (stale_policy) and the start-up
		// hold: Decide answers a request with none of these without
		// reading them (no token: Pass, or 401 missing_token). The refresh
		// route's presented token is checked in checkPresented.
		p.sync.check() // adopt what another worker published: a refusal anywhere is a refusal here
		if cfg.StalePolicy == config.FailClosed {
			req.LastSync = p.sync.freshness(t) // (Decide reads it under fail_closed only)
		}
	}
	d := p.engine.DecideView(t, req, p.sync.state)
	if d.Action == decide.Pass && d.HasToken && !p.sync.ready() {
		// No state yet (start-up): hold, then stale_policy decides.
		if p.sync.hold(h, t, endOfStream) {
			return types.ActionPause
		}
		if cfg.StalePolicy == config.FailClosed {
			d = &decide.Decision{Action: decide.Refuse, Status: 503, Reason: decide.ReasonStale,
				Message: decide.Message(decide.ReasonStale), HasToken: true}
		}
	}
	if d.Action == decide.Refuse && d.Reason == protocol.ReasonExpired && h.route == decide.RouteLogout {
		// The app's logout takes an expired token and ends its session
		// (the magic session manager verifies it ignoring exp): refused
		// here, a client whose token lapsed could not log out, and the
		// session's refresh token lived on. Revoke it and let it through.
		p.metrics.allow()
		h.setIdentity(nil, seen)
		return h.logout(req.Authorization, req.Cookie)
	}
	if d.Action == decide.Refuse {
		h.setIdentity(nil, seen)
		if d.Err != nil {
			proxywasm.LogDebugf("meshsession: refused %s: %v", d.Reason, d.Err)
		}
		h.refuse(d.Status, d.Reason, d.Message)
		return types.ActionPause
	}
	p.metrics.allow()
	if d.HasToken {
		h.setIdentity(d, seen)
		p.noteActivity(t, d, h, req.Authorization, req.Cookie)
	} else {
		h.setIdentity(nil, seen)
	}

	h.revoking = d.HasToken && p.revoking.Match(req.Method, req.Path)
	switch h.route {
	case decide.RouteLogout:
		if d.HasToken {
			return h.logout(req.Authorization, req.Cookie)
		}
	case decide.RouteLogin:
		h.observeRequest()
		if endOfStream {
			return h.loginCheck() // no body: decide on the headers (logincheck.go)
		}
		if cfg.Login.IdentifierPath != "" && encodedBody() {
			h.refuse(415, "invalid_request", "Login request body must not be content-encoded")
			return types.ActionPause
		}
	case decide.RouteRefresh:
		h.observeRequest()
		if cfg.Refresh.RequestTokenPath == "" || endOfStream {
			return h.checkPresented(nil)
		}
		if encodedBody() {
			h.refuse(415, "invalid_request", "Refresh request body must not be content-encoded")
			return types.ActionPause
		}
	}
	return types.ActionContinue
}

// encodedBody reports a request body sent with a Content-Encoding other
// than identity (authflow.Encoded): the app's body parser inflates it, the
// filter reads bytes, so a login name or a refresh token in it would go
// unread; no browser compresses a request body.
func encodedBody() bool {
	v, err := proxywasm.GetHttpRequestHeader("content-encoding")
	return err == nil && authflow.Encoded(v)
}

// jwtAuthnPayload reads the verified payload jwt_authn left in dynamic metadata.
func (h *httpContext) jwtAuthnPayload() string {
	v := h.plugin.cfg.Verify
	b, err := proxywasm.GetProperty([]string{"metadata", "filter_metadata", v.MetadataNamespace, v.MetadataKey})
	if err != nil || len(b) == 0 {
		return ""
	}
	// Envoy hands metadata over as a serialised google.protobuf.Struct; JSON
	// (as some hosts give) passes through unchanged.
	payload, err := protostruct.ToJSON(b)
	if err != nil {
		proxywasm.LogDebugf("meshsession: jwt_authn metadata unreadable: %v", err)
		return ""
	}
	return payload
}

// identitySeen counts the identity headers the client sent.
type identitySeen struct{ sessionID, userID int }

// setIdentity makes the request carry only the identity the plugin vouches
// for (never the client's): each identity header is set from d, or removed
// when d (nil: no verified token) has no value for it. Host calls happen
// only where needed: a header the client did not send is not removed, and a
// single one is overwritten by the replace (which sets only the first value:
// with several, they are removed first).
func (h *httpContext) setIdentity(d *decide.Decision, seen identitySeen) {
	ih := h.plugin.cfg.IdentityHeaders
	var sid, uid string
	if d != nil {
		sid = d.SessionID
		if sid == "" {
			sid = d.SessionKey
		}
		uid = d.UserID
	}
	setIdentityHeader(ih.SessionID, sid, seen.sessionID)
	setIdentityHeader(ih.UserID, uid, seen.userID)
}

func setIdentityHeader(name, value string, seen int) {
	if name == "" {
		return
	}
	if seen > 1 || seen > 0 && value == "" {
		_ = proxywasm.RemoveHttpRequestHeader(name)
	}
	if value != "" {
		setRequestHeader(name, value)
	}
}

// refuse answers the request locally with the JSON error body.
func (h *httpContext) refuse(status int, reason, message string) {
	h.plugin.metrics.refusal(reason)
	hdrs := [][2]string{{"content-type", "application/json; charset=utf-8"}, {"cache-control", "no-store"}}
	if reason != "" {
		hdrs = append(hdrs, [2]string{decide.HeaderTerminatedReason, reason})
	}
	if status == 401 {
		hdrs = append(hdrs, [2]string{"www-authenticate", `Bearer error="invalid_token"`})
	}
	if err := proxywasm.SendHttpResponse(uint32(status), hdrs, decide.ErrorBody(status, message, reason), -1); err != nil {
		proxywasm.LogErrorf("meshsession: send local response: %v", err)
	}
}

func (h *httpContext) clientIP() string {
	cfg := h.plugin.cfg
	var xff string
	if cfg.TrustedProxyHops > 0 {
		xff = header("x-forwarded-for")
	}
	src, _ := proxywasm.GetProperty([]string{"source", "address"})
	return clientip.From(xff, cfg.TrustedProxyHops, string(src))
}

func (h *httpContext) names() token.ClaimNames {
	cfg := h.plugin.cfg
	return token.ClaimNames{Session: cfg.SessionClaims, User: cfg.UserClaims}
}

// OnHttpRequestBody accumulates the body of login and refresh requests (the
// login identifier for failed-login reports; the presented refresh token).
func (h *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if h.waiting || h.held {
		return types.ActionPause // (a host that delivers the body of a held stream)
	}
	if h.route == decide.RouteLogin {
		return h.loginBody(bodySize, endOfStream) // logincheck.go
	}
	if h.route != decide.RouteRefresh || h.plugin.cfg.Refresh.RequestTokenPath == "" {
		return types.ActionContinue // (a cookie-only refresh was checked on its headers)
	}
	if bodySize > authflow.MaxBodyLen {
		// A body the filter cannot read could present a revoked refresh
		// token it never checks: refuse it, as a login's.
		h.refuse(413, "invalid_request", "Refresh request body too large")
		return types.ActionPause
	}
	if !endOfStream {
		return types.ActionPause // buffer until the whole body is here
	}
	if bodySize > 0 && bodySize <= authflow.MaxBodyLen {
		b, err := proxywasm.GetHttpRequestBody(0, bodySize)
		if err == nil {
			h.requestBody = b
		}
	}
	return h.checkPresented(h.requestBody)
}

// checkPresented refuses a refresh when a refresh token it presents is
// revoked: any of them, as the filter cannot know which one the app's
// parser keeps (authflow.PresentedRefreshTokens).
func (h *httpContext) checkPresented(body []byte) types.Action {
	if h.route != decide.RouteRefresh {
		return types.ActionContinue
	}
	p := h.plugin
	toks, err := authflow.PresentedRefreshTokens(body, header("content-type"), header("cookie"), p.cfg.Refresh)
	if err != nil {
		h.refuse(400, "invalid_request", "Refresh request body is unreadable")
		return types.ActionPause
	}
	if len(toks) == 0 {
		return types.ActionContinue
	}
	h.presented = toks[0]
	p.sync.check() // the state another worker published, as for a request's token
	for _, tok := range toks {
		if d := p.engine.CheckToken(now(), tok, p.sync.state); d.Action == decide.Refuse {
			p.metrics.refreshDenied.Increment(1)
			h.refuse(d.Status, d.Reason, d.Message)
			return types.ActionPause
		}
	}
	return types.ActionContinue
}

// logout revokes the session before the logout reaches the app, so that the
// token is dead everywhere once the client sees the app's answer. When
// sessionsvc cannot record it (down, or an answer other than 2xx), the
// logout is enforced by this proxy alone, on all its workers, and reported
// later (local.go); the request goes on to the app all the same: the
// logout did happen here, and the client gets the app's answer.
func (h *httpContext) logout(authorization, cookie string) types.Action {
	p := h.plugin
	tok, _, err := token.Extract(authorization, cookie, p.cfg.TokenCookie)
	if err != nil || tok == "" {
		return types.ActionContinue
	}
	info := authflow.Inspect(tok, h.names())
	keys := info.Keys
	if p.cfg.Refresh.RequestTokenCookie != "" {
		// The refresh token the logout carries in its cookie (Strapi v5's
		// strapi_up_refresh; the magic session manager ends the session it
		// names): revoked with the access token, so that it refreshes
		// nothing on this proxy even while sessionsvc cannot record the
		// logout.
		rts, _ := authflow.PresentedRefreshTokens(nil, "", header("cookie"), p.cfg.Refresh)
		for _, rt := range rts {
			keys = append(keys, token.FingerprintKey(rt))
		}
	}
	var exp int64
	if info.Claims.HasExpiresAt && info.Claims.ExpiresAt > now().Unix() {
		// (An expired token's logout, kept locally, is kept until it is
		// reported: its session's refresh token outlives the token.)
		exp = info.Claims.ExpiresAt
	}
	body := authflow.EncodeRevoke(protocol.RevokeRequest{Keys: keys, Reason: protocol.ReasonLogout})
	id := h.contextID
	err = p.callout("POST", protocol.PathRevoke, body, func(status int, resp []byte, err error) {
		if err != nil || status/100 != 2 {
			proxywasm.LogWarnf("meshsession: logout not recorded by sessionsvc (status %d, %v): %s; enforced by this proxy, reported when sessionsvc takes it",
				status, err, snippet(resp))
			p.sync.revokeLocally(now(), keys, protocol.ReasonLogout, exp, false)
			h.waiting = false
			_ = proxywasm.ResumeHttpRequest()
			return
		}
		p.metrics.logouts.Increment(1)
		// The logout goes on to the app only once every worker of this
		// proxy enforces it: a sync fetched after the revocation (or, when
		// that sync fails, the keys listed locally until the feed has them).
		resume := resumeAfterSync(p, h, id, false)
		p.sync.syncNow(id, func() {
			if t := now(); !p.sync.state.Carries(keys, t.Unix()) {
				p.sync.revokeLocally(t, keys, protocol.ReasonLogout, exp, true)
			}
			resume()
		})
	})
	if err != nil {
		proxywasm.LogWarnf("meshsession: dispatch logout: %v; enforced by this proxy, reported when sessionsvc takes it", err)
		p.sync.revokeLocally(now(), keys, protocol.ReasonLogout, exp, false)
		return types.ActionContinue
	}
	h.waiting = true
	return types.ActionPause
}

// loginUnavailable applies login_unavailable_policy when sessionsvc could
// not register (or judge) a login. From a callout's answer (async) it
// releases or refuses the held answer itself; in a stream callback it
// refuses, or returns Continue for the callback to answer (a
// proxy_continue_stream there would resume a stream that is not stopped).
func (h *httpContext) loginUnavailable(status int, resp []byte, err error, async bool) types.Action {
	p := h.plugin
	p.metrics.loginsUnregistered.Increment(1)
	proxywasm.LogWarnf("meshsession: login not registered (sessionsvc status %d, %v): %s; policy %s",
		status, err, snippet(resp), p.cfg.LoginUnavailablePolicy)
	if p.cfg.LoginUnavailablePolicy == config.LoginDeny {
		h.deny(503, decide.ReasonStale, "Session service unavailable, try again")
		return types.ActionPause
	}
	if async {
		h.release()
	}
	return types.ActionContinue
}

func (h *httpContext) reportFailedLogin() {
	p := h.plugin
	body := authflow.EncodeFailedLogin(protocol.FailedLogin{Identifier: h.loginIdentifier(), IP: h.ip, Status: h.status})
	if err := p.callout("POST", protocol.PathFailed, body, func(int, []byte, error) {}); err == nil {
		p.metrics.failedLogins.Increment(1)
	}
}

// locale is the first language tag of Accept-Language ("de-DE,de;q=0.9" -> "de-DE").
func locale(acceptLanguage string) string {
	tag, _, _ := strings.Cut(acceptLanguage, ",")
	tag, _, _ = strings.Cut(tag, ";")
	tag = strings.TrimSpace(tag)
	if len(tag) > 35 {
		return ""
	}
	return tag
}
