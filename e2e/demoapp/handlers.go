package demoapp

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/internal/strapi"
)

// seededAt is the creation time reported for seeded users and articles.
var seededAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// UserJSON is the user object in login answers and GET /api/users/me
// (the fields Strapi v5's users-permissions plugin returns).
type UserJSON struct {
	ID          int64  `json:"id"`
	DocumentID  string `json:"documentId"`
	Username    string `json:"username"`
	Email       string `json:"email"`
	Provider    string `json:"provider"`
	Confirmed   bool   `json:"confirmed"`
	Blocked     bool   `json:"blocked"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
	PublishedAt string `json:"publishedAt"`
}

// AuthResponse answers POST /api/auth/local (User set) and
// POST /api/auth/refresh (User nil).
type AuthResponse struct {
	JWT          string    `json:"jwt"`
	RefreshToken string    `json:"refreshToken"`
	User         *UserJSON `json:"user,omitempty"`
}

// Identity is what a protected resource saw: the identity headers the proxy
// injected and the identity in the verified token.
type Identity struct {
	SessionID      string `json:"sessionId"`      // x-session-id request header
	UserID         string `json:"userId"`         // x-user-id request header
	TokenUserID    int64  `json:"tokenUserId"`    // "id" claim
	TokenSessionID string `json:"tokenSessionId"` // "sid" claim ("" without SIDClaim)
}

// Article is one entry of GET /api/articles.
type Article struct {
	ID          int64  `json:"id"`
	DocumentID  string `json:"documentId"`
	Title       string `json:"title"`
	Slug        string `json:"slug"`
	PublishedAt string `json:"publishedAt"`
}

var articles = []Article{
	{ID: 1, DocumentID: "art0000000000000000000001", Title: "Sessions at the edge", Slug: "sessions-at-the-edge"},
	{ID: 2, DocumentID: "art0000000000000000000002", Title: "Revocation in under a second", Slug: "revocation-in-under-a-second"},
	{ID: 3, DocumentID: "art0000000000000000000003", Title: "Why JWTs outlive logouts", Slug: "why-jwts-outlive-logouts"},
}

func userJSON(u User) *UserJSON {
	ts := seededAt.Format("2006-01-02T15:04:05.000Z")
	return &UserJSON{
		ID:          u.ID,
		DocumentID:  fmt.Sprintf("usr%021d", u.ID),
		Username:    u.Username,
		Email:       u.Email,
		Provider:    "local",
		Confirmed:   true,
		CreatedAt:   ts,
		UpdatedAt:   ts,
		PublishedAt: ts,
	}
}

// fieldError is one entry of a ValidationError's details.errors.
type fieldError struct {
	Path    []string `json:"path"`
	Message string   `json:"message"`
	Name    string   `json:"name"`
}

func writeValidation(w http.ResponseWriter, errs []fieldError) {
	msg := fmt.Sprintf("%d errors occurred", len(errs))
	if len(errs) == 1 {
		msg = errs[0].Message
	}
	strapi.WriteError(w, http.StatusBadRequest, "ValidationError", msg, map[string]any{"errors": errs})
}

// decodeBody decodes a JSON object body into v. An empty body decodes as
// {}. It writes the 400 answer itself and returns false on bad input.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil || errors.Is(err, io.EOF) {
		return true
	}
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		writeValidation(w, []fieldError{{
			Path: []string{typeErr.Field}, Message: typeErr.Field + " must be a `" + typeErr.Type.String() + "` type", Name: "ValidationError",
		}})
	case errors.As(err, &maxErr):
		strapi.WriteError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeError", "request entity too large", nil)
	default:
		strapi.WriteError(w, http.StatusBadRequest, "BadRequestError", "Invalid JSON body", nil)
	}
	return false
}

func required(errs []fieldError, name, value string) []fieldError {
	if value == "" {
		return append(errs, fieldError{Path: []string{name}, Message: name + " is a required field", Name: "ValidationError"})
	}
	return errs
}

func (a *App) handleHealth(w http.ResponseWriter, _ *http.Request) {
	strapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// LoginRequest is the body of POST /api/auth/local.
type LoginRequest struct {
	Identifier string `json:"identifier"`
	Password   string `json:"password"`
}

func (a *App) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if !decodeBody(w, r, &req) {
		return
	}
	a.loginRequests.Add(1) // the credentials reached the app
	if errs := required(required(nil, "identifier", req.Identifier), "password", req.Password); len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	u, ok := a.byLogin[strings.ToLower(req.Identifier)]
	if !ok || !constantTimeEqual(u.Password, req.Password) {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "login refused", slog.String("identifier", req.Identifier))
		strapi.WriteError(w, http.StatusBadRequest, "ValidationError", "Invalid identifier or password", nil)
		return
	}
	now := a.cfg.Now()
	sid, refresh := a.newSession(u, now)
	tok, err := a.issueAccess(u, sid, now)
	if err != nil {
		a.log.Error("login", slog.Any("err", err))
		strapi.WriteError(w, http.StatusInternalServerError, "ApplicationError", "Internal Server Error", nil)
		return
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "login", slog.Int64("user", u.ID), slog.String("session", sid))
	strapi.WriteJSON(w, http.StatusOK, AuthResponse{JWT: tok, RefreshToken: refresh, User: userJSON(u)})
}

// RefreshRequest is the body of POST /api/auth/refresh (and, optionally,
// of POST /api/auth/logout).
type RefreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

func (a *App) handleRefresh(w http.ResponseWriter, r *http.Request) {
	var req RefreshRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if errs := required(nil, "refreshToken", req.RefreshToken); len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	now := a.cfg.Now()
	u, sid, refresh, err := a.rotate(req.RefreshToken, now)
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "refresh refused", slog.String("reason", err.Error()))
		strapi.WriteError(w, http.StatusUnauthorized, "UnauthorizedError", "Invalid refresh token", nil)
		return
	}
	tok, err := a.issueAccess(u, sid, now)
	if err != nil {
		a.log.Error("refresh", slog.Any("err", err))
		strapi.WriteError(w, http.StatusInternalServerError, "ApplicationError", "Internal Server Error", nil)
		return
	}
	strapi.WriteJSON(w, http.StatusOK, AuthResponse{JWT: tok, RefreshToken: refresh})
}

func (a *App) handleLogout(w http.ResponseWriter, r *http.Request) {
	c, u, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	var req RefreshRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if sid, ok := a.sessionOfAccess(c); ok {
		a.endSession(sid)
	}
	if req.RefreshToken != "" {
		if sid, owner, ok := a.sessionOfRefresh(req.RefreshToken); ok && owner == u.ID {
			a.endSession(sid)
		}
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "logout", slog.Int64("user", u.ID))
	strapi.WriteJSON(w, http.StatusOK, map[string]any{"data": map[string]string{"message": "logged out"}})
}

// tokenFrom returns the access token: Authorization: Bearer first, then the
// "jwt" cookie.
func tokenFrom(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if ck, err := r.Cookie("jwt"); err == nil {
		return ck.Value
	}
	return ""
}

// authenticate verifies the request's access token. Like Strapi: no token
// -> 403 Forbidden; a bad, forged or expired token -> 401.
func (a *App) authenticate(w http.ResponseWriter, r *http.Request) (*Claims, User, bool) {
	raw := tokenFrom(r)
	if raw == "" {
		strapi.WriteError(w, http.StatusForbidden, "ForbiddenError", "Forbidden", nil)
		return nil, User{}, false
	}
	c, u, err := a.verifyAccess(raw)
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "token refused", slog.String("err", err.Error()))
		strapi.WriteError(w, http.StatusUnauthorized, "UnauthorizedError", "Missing or invalid credentials", nil)
		return nil, User{}, false
	}
	return c, u, true
}

type protectedHandler func(w http.ResponseWriter, r *http.Request, id Identity, u User)

// protected verifies the token and echoes the proxy's identity headers.
func (a *App) protected(h protectedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, u, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		id := Identity{
			SessionID:      r.Header.Get(HeaderSessionID),
			UserID:         r.Header.Get(HeaderUserID),
			TokenUserID:    c.ID,
			TokenSessionID: c.SessionID,
		}
		if id.SessionID != "" {
			w.Header().Set(HeaderEchoSessionID, id.SessionID)
		}
		if id.UserID != "" {
			w.Header().Set(HeaderEchoUserID, id.UserID)
		}
		h(w, r, id, u)
	}
}

func (a *App) handleMe(w http.ResponseWriter, _ *http.Request, _ Identity, u User) {
	strapi.WriteJSON(w, http.StatusOK, userJSON(u))
}

// ArticlesResponse answers GET /api/articles.
type ArticlesResponse struct {
	Data []Article `json:"data"`
	Meta struct {
		Pagination Pagination `json:"pagination"`
		Identity   Identity   `json:"identity"`
	} `json:"meta"`
}

// Pagination is Strapi's pagination meta.
type Pagination struct {
	Page      int `json:"page"`
	PageSize  int `json:"pageSize"`
	PageCount int `json:"pageCount"`
	Total     int `json:"total"`
}

func publishedArticles() []Article {
	out := make([]Article, len(articles))
	copy(out, articles)
	for i := range out {
		out[i].PublishedAt = seededAt.Format("2006-01-02T15:04:05.000Z")
	}
	return out
}

func (a *App) handleArticles(w http.ResponseWriter, _ *http.Request, id Identity, _ User) {
	var resp ArticlesResponse
	resp.Data = publishedArticles()
	resp.Meta.Pagination = Pagination{Page: 1, PageSize: 25, PageCount: 1, Total: len(resp.Data)}
	resp.Meta.Identity = id
	strapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *App) handleArticle(w http.ResponseWriter, r *http.Request, id Identity, _ User) {
	key := r.PathValue("id")
	for _, art := range publishedArticles() {
		if art.DocumentID == key || strconv.FormatInt(art.ID, 10) == key {
			strapi.WriteJSON(w, http.StatusOK, map[string]any{"data": art, "meta": map[string]any{"identity": id}})
			return
		}
	}
	strapi.WriteError(w, http.StatusNotFound, "NotFoundError", "Not Found", nil)
}

// EchoResponse answers GET /api/echo (no token needed): what reached the app.
type EchoResponse struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"` // lower-case names; authorization and cookie are redacted
}

func (a *App) handleEcho(w http.ResponseWriter, r *http.Request) {
	hs := make(map[string]string, len(r.Header))
	for k := range r.Header {
		v := strings.Join(r.Header.Values(k), ", ")
		if lk := strings.ToLower(k); lk == "authorization" || lk == "cookie" {
			v = "[redacted]"
		}
		hs[strings.ToLower(k)] = v
	}
	strapi.WriteJSON(w, http.StatusOK, EchoResponse{Method: r.Method, Path: r.URL.Path, Headers: hs})
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
