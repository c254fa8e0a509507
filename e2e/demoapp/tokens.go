package demoapp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of an access token. ID is the user id as a number
// (Strapi's "id"), Subject the same id as a string. SessionID ("sid") is set
// only when Config.SIDClaim is on. Nonce makes two tokens issued in the same
// second for the same user distinct (so their fingerprints differ); it is not
// a session claim.
type Claims struct {
	ID        int64  `json:"id"`
	SessionID string `json:"sid,omitempty"`
	Nonce     string `json:"nonce"`
	jwt.RegisteredClaims
}

// refreshEntry is one refresh token, stored by the SHA-256 of its value.
type refreshEntry struct {
	session string
	userID  int64
	expires time.Time
	// rotated is set once the token was exchanged; presenting it again is
	// refused (reuse).
	rotated bool
}

// accessEntry remembers which session an access token (by nonce) belongs
// to, for logout when tokens carry no sid claim.
type accessEntry struct {
	session string
	expires time.Time
}

// session is one login: the chain of refresh tokens descending from it.
type session struct {
	id      string
	userID  int64
	expires time.Time // latest expiry of its refresh tokens
	ended   bool
}

var (
	errInvalidRefresh = errors.New("invalid refresh token")
	errReusedRefresh  = errors.New("refresh token already used")
)

func randomID(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it aborts the program instead).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return string(sum[:])
}

// issueAccess signs an access token for user u in session sid.
func (a *App) issueAccess(u User, sid string, now time.Time) (string, error) {
	c := Claims{
		ID:    u.ID,
		Nonce: randomID(8),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.cfg.Issuer,
			Subject:   strconv.FormatInt(u.ID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(a.cfg.TokenTTL)),
		},
	}
	if a.cfg.SIDClaim {
		c.SessionID = sid
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	a.mu.Lock()
	a.access[c.Nonce] = accessEntry{session: sid, expires: c.ExpiresAt.Time}
	a.mu.Unlock()
	return tok, nil
}

// sessionOfAccess returns the session an access token was issued for.
func (a *App) sessionOfAccess(c *Claims) (string, bool) {
	if c.SessionID != "" {
		return c.SessionID, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.access[c.Nonce]
	return e.session, ok
}

// verifyAccess checks an access token's signature (HS256 only), expiry and
// user, and returns its claims.
func (a *App) verifyAccess(raw string) (*Claims, User, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.cfg.Now),
	)
	if err != nil {
		return nil, User{}, fmt.Errorf("verify access token: %w", err)
	}
	u, ok := a.byID[c.ID]
	if !ok || c.Subject != strconv.FormatInt(c.ID, 10) {
		return nil, User{}, fmt.Errorf("verify access token: unknown user %d", c.ID)
	}
	return &c, u, nil
}

// newSession starts a session for u and returns its first refresh token.
func (a *App) newSession(u User, now time.Time) (sid, refresh string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	sid = randomID(16)
	s := &session{id: sid, userID: u.ID}
	a.sessions[sid] = s
	return sid, a.addRefreshLocked(s, now)
}

func (a *App) addRefreshLocked(s *session, now time.Time) string {
	tok := randomID(32)
	exp := now.Add(a.cfg.RefreshTTL)
	a.refresh[hashToken(tok)] = &refreshEntry{session: s.id, userID: s.userID, expires: exp}
	if exp.After(s.expires) {
		s.expires = exp
	}
	return tok
}

// rotate exchanges a refresh token for a new one. The presented token is
// marked rotated; presenting it again yields errReusedRefresh.
func (a *App) rotate(tok string, now time.Time) (User, string, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	e, ok := a.refresh[hashToken(tok)]
	if !ok || !now.Before(e.expires) {
		return User{}, "", "", errInvalidRefresh
	}
	if e.rotated {
		return User{}, "", "", errReusedRefresh
	}
	s, ok := a.sessions[e.session]
	if !ok || s.ended {
		return User{}, "", "", errInvalidRefresh
	}
	u, ok := a.byID[e.userID]
	if !ok {
		return User{}, "", "", errInvalidRefresh
	}
	e.rotated = true
	return u, s.id, a.addRefreshLocked(s, now), nil
}

// endSession ends session sid (its refresh tokens stop working). It reports
// whether the session existed and was still open.
func (a *App) endSession(sid string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[sid]
	if !ok || s.ended {
		return false
	}
	s.ended = true
	return true
}

// sessionOfRefresh returns the session a refresh token belongs to.
func (a *App) sessionOfRefresh(tok string) (string, int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.refresh[hashToken(tok)]
	if !ok {
		return "", 0, false
	}
	return e.session, e.userID, true
}

// pruneLocked drops expired refresh tokens and sessions, at most once a minute.
func (a *App) pruneLocked(now time.Time) {
	if now.Sub(a.lastPrune) < time.Minute {
		return
	}
	a.lastPrune = now
	for k, e := range a.refresh {
		if !now.Before(e.expires) {
			delete(a.refresh, k)
		}
	}
	for k, e := range a.access {
		if !now.Before(e.expires) {
			delete(a.access, k)
		}
	}
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, k)
		}
	}
}
