package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/internal/strapi"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Cookie names. Over HTTPS the __Host- prefix pins the cookie to this
// host, path / and Secure; plain-HTTP development on localhost uses the
// unprefixed name without Secure.
const (
	cookieSecure = "__Host-meshsession_dashboard"
	cookieDev    = "meshsession_dashboard"
	// cookieMagic separates dashboard cookies from other values sealed with the keyring.
	cookieMagic = "mss-dashboard-v1\n"
	csrfHeader  = "X-CSRF-Token"
	maxTokenLen = 512
	// Sign-in failures per client address before it must wait.
	maxLoginFailures   = 10
	loginFailureWindow = 15 * time.Minute
)

// session is the sealed cookie's content.
type session struct {
	Token   string `json:"t"` // the admin token (sealed in the cookie, never stored server-side)
	CSRF    string `json:"c"`
	Expires int64  `json:"e"` // Unix seconds
	Issued  int64  `json:"i"`
	Name    string `json:"n"` // admin token name, for display
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (d *Dashboard) sealSession(s *session) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return d.kr.Seal(cookieMagic + string(b))
}

// openSession decodes and checks a cookie value: authentic, not expired.
// It does not consult the store.
func (d *Dashboard) openSession(v string, now time.Time) (*session, error) {
	pt, err := d.kr.Open(v)
	if err != nil {
		return nil, errors.New("sign-in cookie is not valid")
	}
	body, ok := strings.CutPrefix(pt, cookieMagic)
	if !ok {
		return nil, errors.New("sign-in cookie is not a dashboard cookie")
	}
	var s session
	if err := json.Unmarshal([]byte(body), &s); err != nil || s.Token == "" || s.CSRF == "" {
		return nil, errors.New("sign-in cookie is malformed")
	}
	if now.Unix() >= s.Expires {
		return nil, errExpired
	}
	return &s, nil
}

var errExpired = errors.New("your dashboard session expired")

// secureRequest says whether the browser talks HTTPS to us (directly or
// through a proxy that says so). Cookies are Secure unless the request is
// plain HTTP to a loopback host (local development).
func secureRequest(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	return !loopbackHost(r.Host)
}

func loopbackHost(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func cookieName(r *http.Request) string {
	if secureRequest(r) {
		return cookieSecure
	}
	return cookieDev
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, value string, expires time.Time) {
	c := &http.Cookie{Name: cookieName(r), Value: value, Path: "/", HttpOnly: true, Secure: secureRequest(r),
		SameSite: http.SameSiteStrictMode}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
		c.MaxAge = int(time.Until(expires).Seconds())
	}
	http.SetCookie(w, c)
}

// sameOrigin refuses requests a browser marks as cross-site, and any whose
// Origin is not this host (defence in depth beside SameSite and CSRF).
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	return true
}

type apiFunc func(w http.ResponseWriter, r *http.Request, s *session)

// authed checks the cookie, the admin token behind it (revoked tokens end
// the dashboard session) and, for state changes, the CSRF token.
func (d *Dashboard) authed(h apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, server.MaxAPIBody)
		s, status, msg, code := d.authenticate(r)
		if s == nil {
			if status == http.StatusUnauthorized {
				d.setCookie(w, r, "", time.Time{})
			}
			server.WriteError(w, status, msg, map[string]any{"code": code})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				server.WriteError(w, http.StatusForbidden, "cross-site request refused", map[string]any{"code": "cross_site"})
				return
			}
			got := r.Header.Get(csrfHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
				server.WriteError(w, http.StatusForbidden, "missing or wrong CSRF token; reload the page and try again", map[string]any{"code": "csrf"})
				return
			}
		}
		h(w, r, s)
	}
}

func (d *Dashboard) authenticate(r *http.Request) (*session, int, string, string) {
	var raw string
	for _, name := range []string{cookieSecure, cookieDev} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			raw = c.Value
			break
		}
	}
	if raw == "" {
		return nil, http.StatusUnauthorized, "sign in with an admin token", "signed_out"
	}
	now := d.now()
	s, err := d.openSession(raw, now)
	if errors.Is(err, errExpired) {
		return nil, http.StatusUnauthorized, "your dashboard session expired; sign in again", "expired"
	}
	if err != nil {
		return nil, http.StatusUnauthorized, err.Error() + "; sign in again", "invalid"
	}
	if _, err := d.st.FindAdminToken(r.Context(), server.HashAdminToken(s.Token), now.UTC()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, http.StatusUnauthorized, "your admin token was revoked; sign in with a valid token", "revoked"
		}
		d.log.Warn("dashboard: checking admin token failed", "err", err)
		return nil, http.StatusServiceUnavailable, "sessionsvc cannot reach its database right now; retry in a moment", "unavailable"
	}
	return s, 0, "", ""
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !sameOrigin(r) {
		server.WriteError(w, http.StatusForbidden, "cross-site request refused", map[string]any{"code": "cross_site"})
		return
	}
	if !server.IsJSONType(r.Header.Get("Content-Type")) {
		server.WriteError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", nil)
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if !decodeBody(w, r, &body, "send {\"token\": \"…\"}") {
		return
	}
	tok := strings.TrimSpace(body.Token)
	if tok == "" || len(tok) > maxTokenLen {
		server.WriteError(w, http.StatusBadRequest, "enter an admin token", map[string]any{"code": "token_required"})
		return
	}
	ctx := r.Context()
	now := d.now().UTC()
	scope := "dashboard:" + server.ClientIP(r)
	if n, err := d.st.CountFailedLogins(ctx, scope, now.Add(-loginFailureWindow)); err == nil && n >= maxLoginFailures {
		w.Header().Set("Retry-After", "900")
		server.WriteError(w, http.StatusTooManyRequests, "too many failed sign-ins from your address; wait 15 minutes", map[string]any{"code": "rate_limited"})
		return
	}
	at, err := d.st.FindAdminToken(ctx, server.HashAdminToken(tok), now)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := d.st.RecordFailedLogin(ctx, scope, now, loginFailureWindow); err != nil {
			d.log.Warn("dashboard: recording failed sign-in", "err", err)
		}
		d.log.Info("dashboard: sign-in refused", "ip", server.ClientIP(r))
		server.WriteError(w, http.StatusUnauthorized, "unknown or revoked admin token", map[string]any{"code": "bad_token"})
		return
	}
	if err != nil {
		d.log.Warn("dashboard: sign-in: checking admin token failed", "err", err)
		server.WriteError(w, http.StatusServiceUnavailable, "sessionsvc cannot reach its database right now; retry in a moment", map[string]any{"code": "unavailable"})
		return
	}
	csrf, err := randomString(32)
	if err != nil {
		server.WriteError(w, http.StatusInternalServerError, "internal error", nil)
		return
	}
	exp := now.Add(d.cfg.SessionTTL)
	s := &session{Token: tok, CSRF: csrf, Expires: exp.Unix(), Issued: now.Unix(), Name: at.Name}
	v, err := d.sealSession(s)
	if err != nil {
		d.log.Error("dashboard: sealing the session cookie", "err", err)
		server.WriteError(w, http.StatusInternalServerError, "internal error", nil)
		return
	}
	d.setCookie(w, r, v, exp)
	d.log.Info("dashboard: signed in", "admin", at.Name, "ip", server.ClientIP(r))
	writeJSON(w, http.StatusOK, meJSON(s, secureRequest(r)))
}

func meJSON(s *session, secure bool) map[string]any {
	return map[string]any{"name": s.Name, "csrf": s.CSRF, "expires": time.Unix(s.Expires, 0).UTC(), "secureCookie": secure}
}

func (d *Dashboard) me(w http.ResponseWriter, r *http.Request, s *session) {
	writeJSON(w, http.StatusOK, meJSON(s, secureRequest(r)))
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *session) {
	d.setCookie(w, r, "", time.Time{})
	d.log.Info("dashboard: signed out", "admin", s.Name)
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// supported languages; the first is the fallback.
var languages = []string{"en", "de", "es", "fr", "pt"}

// pickLanguage chooses from an Accept-Language header by quality.
func pickLanguage(header string) string {
	best, bestQ := languages[0], -1.0
	for i, part := range strings.Split(header, ",") {
		if i > 20 {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		for _, l := range languages {
			if base == l && q > bestQ && q > 0 {
				best, bestQ = l, q
			}
		}
	}
	return best
}

// writeJSON answers status with v as JSON (strapi.WriteJSON), as the
// server's APIs do.
func writeJSON(w http.ResponseWriter, status int, v any) { strapi.WriteJSON(w, status, v) }

// sessionState answers whether the browser is signed in, always with 200:
// the page asks on every load, and a signed-out visitor is not an error
// (a 401 here would put a failed request in the browser console on every
// visit). Signed in, it answers what /api/me does plus signedIn: true.
func (d *Dashboard) sessionState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s, status, msg, code := d.authenticate(r)
	if s == nil {
		if status != http.StatusUnauthorized {
			server.WriteError(w, status, msg, map[string]any{"code": code})
			return
		}
		if code != "signed_out" {
			d.setCookie(w, r, "", time.Time{})
		}
		writeJSON(w, http.StatusOK, map[string]any{"signedIn": false, "code": code})
		return
	}
	me := meJSON(s, secureRequest(r))
	me["signedIn"] = true
	writeJSON(w, http.StatusOK, me)
}
