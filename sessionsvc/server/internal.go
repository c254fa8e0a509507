package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Input bounds of the internal API.
const (
	maxKeyLen       = 512
	maxKeysPerCall  = 16
	maxUserIDLen    = 256
	maxUserAgentLen = 1024
	maxActivity     = 20_000
)

// headerKey is protocol.HeaderKey in canonical form: looking it up
// allocates nothing.
var headerKey = http.CanonicalHeaderKey(protocol.HeaderKey)

func (s *Server) checkInternalKey(r *http.Request) error {
	got := r.Header.Values(headerKey)
	if len(got) != 1 || got[0] == "" || subtle.ConstantTimeCompare([]byte(got[0]), s.key) != 1 {
		// (one header exactly: of two, which would a proxy have checked?)
		return &apiError{Status: http.StatusUnauthorized, Message: "missing or wrong " + protocol.HeaderKey}
	}
	return nil
}

// validKey checks a session key ("sid:" or "fp:" and a bounded value without control characters).
func validKey(k string) error {
	if len(k) > maxKeyLen {
		return fmt.Errorf("key longer than %d bytes", maxKeyLen)
	}
	var v string
	switch {
	case strings.HasPrefix(k, protocol.PrefixSession):
		v = k[len(protocol.PrefixSession):]
	case strings.HasPrefix(k, protocol.PrefixFingerprint):
		v = k[len(protocol.PrefixFingerprint):]
	default:
		return fmt.Errorf("key %q must start with %q or %q", truncate(k, 40), protocol.PrefixSession, protocol.PrefixFingerprint)
	}
	if v == "" {
		return fmt.Errorf("key %q has an empty value", k)
	}
	// As the plugin's token.ValidID accepts a claim value: UTF-8 without
	// control characters (C0, DEL, C1); a space is allowed.
	if !utf8.ValidString(v) {
		return fmt.Errorf("key %q is not UTF-8", truncate(k, 40))
	}
	for _, c := range v {
		if c < 0x20 || c >= 0x7f && c < 0xa0 {
			return fmt.Errorf("key %q contains a control character", truncate(k, 40))
		}
	}
	return nil
}

func validKeys(field string, keys []string, required bool) error {
	if required && len(keys) == 0 {
		return badRequest("%s: at least one key is required", field)
	}
	if len(keys) > maxKeysPerCall {
		return badRequest("%s: at most %d keys", field, maxKeysPerCall)
	}
	for i, k := range keys {
		if err := validKey(k); err != nil {
			return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s[%d]: %v", field, i, err), Details: map[string]any{"field": field}}
		}
	}
	return nil
}

// truncate cuts s to at most n bytes (cutText), marked with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutText(s, n) + "…"
}

// cutText cuts s to at most n bytes on a character boundary (a cut inside
// a UTF-8 sequence is text PostgreSQL refuses).
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxUnix is the last second of year 9999: later times do not fit the
// store's millisecond columns' range checks or JSON dates.
const maxUnix = 253402300799

func validUnix(sec int64) bool { return sec >= 0 && sec <= maxUnix }

func validIP(field, ip string) error {
	if ip == "" {
		return nil
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return badRequest("%s: %q is not an IP address", field, truncate(ip, 64))
	}
	return nil
}

func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// tokenKeys are the keys of a login's or refresh's tokens with how long a
// revocation of each must last: an access key until its token's expiry; a
// refresh key until its token's, or, for a refresh token whose expiry the
// plugin could not read (an opaque one), for RevocationTTL; a session key
// ("sid:") as long as either, since every access token the refresh token
// mints until it expires carries the same session claim. (A refresh key
// kept only as long as the access token let a refresh with an ended
// session's opaque refresh token pass again once the access token expired.)
func (s *Server) tokenKeys(access, refresh []string, accessExp, refreshExp int64, now time.Time) []store.SessionKey {
	aExp, rExp := unixTime(accessExp), unixTime(refreshExp)
	if len(refresh) > 0 && rExp.IsZero() {
		rExp = now.Add(s.cfg.RevocationTTL)
	}
	sExp := aExp
	if !aExp.IsZero() && rExp.After(aExp) {
		sExp = rExp
	}
	keys := make([]store.SessionKey, 0, len(access)+len(refresh))
	for _, k := range access {
		if strings.HasPrefix(k, protocol.PrefixSession) {
			keys = append(keys, store.SessionKey{Key: k, Kind: store.KeySession, ExpiresAt: sExp})
		} else {
			keys = append(keys, store.SessionKey{Key: k, Kind: store.KeyAccess, ExpiresAt: aExp})
		}
	}
	for _, k := range refresh {
		keys = append(keys, store.SessionKey{Key: k, Kind: store.KeyRefresh, ExpiresAt: rExp})
	}
	return keys
}

// latestExp is how long a revocation of keys must last: the latest of
// their expiries, or RevocationTTL from now when none is known.
func (s *Server) latestExp(keys []store.SessionKey, now time.Time) time.Time {
	var latest time.Time
	for _, k := range keys {
		if k.ExpiresAt.After(latest) {
			latest = k.ExpiresAt
		}
	}
	if latest.IsZero() {
		latest = now.Add(s.cfg.RevocationTTL)
	}
	return latest
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	var req protocol.RegisterRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.UserID == "" || len(req.UserID) > maxUserIDLen || strings.ContainsAny(req.UserID, "\x00\n\r") {
		// (the admin routes could not name such a user to block it)
		return badRequest("userId is required (at most %d bytes, no CR, LF or NUL)", maxUserIDLen)
	}
	if err := validKeys("keys", req.Keys, true); err != nil {
		return err
	}
	if err := validKeys("refreshKeys", req.RefreshKeys, false); err != nil {
		return err
	}
	if err := validIP("ip", req.IP); err != nil {
		return err
	}
	if !validUnix(req.ExpiresAt) || !validUnix(req.RefreshExpiresAt) || !validUnix(req.IssuedAt) {
		return badRequest("issuedAt, expiresAt and refreshExpiresAt must be Unix times from 0 to %d", maxUnix)
	}
	ctx := r.Context()
	now := s.nowUTC()
	keys := s.tokenKeys(req.Keys, req.RefreshKeys, req.ExpiresAt, req.RefreshExpiresAt, now)
	allKeys := append(append([]string{}, req.Keys...), req.RefreshKeys...)
	latest := s.latestExp(keys, now)

	req.Identifier = cutText(req.Identifier, maxIdentifierIn)
	if ans, locked, err := s.registrationLocked(ctx, req, now); err != nil {
		return err
	} else if locked {
		// Its tokens must not work even if the proxy let the answer through.
		if err := s.st.RevokeKeys(ctx, allKeys, protocol.ReasonLocked, latest, now); err != nil {
			return err
		}
		s.refused(ctx, store.RefusalLockout, now)
		s.metrics.registrations.WithLabelValues("deny").Inc()
		writeJSON(w, http.StatusOK, ans)
		return nil
	}

	// A blocked user's tokens are refused at the proxy anyway; make sure
	// these ones are too, even if the block is lifted later.
	denyBlocked := func() error {
		if err := s.st.RevokeKeys(ctx, allKeys, protocol.ReasonBlocked, latest, now); err != nil {
			return err
		}
		s.refused(ctx, store.RefusalBlocked, now)
		s.metrics.registrations.WithLabelValues("deny").Inc()
		writeJSON(w, http.StatusOK, protocol.RegisterResponse{Decision: protocol.DecisionDeny, Reason: protocol.ReasonBlocked,
			Message: "This account is blocked.", Score: 0})
		return nil
	}
	blocked, err := s.st.IsBlocked(ctx, req.UserID)
	if err != nil {
		return err
	}
	if blocked {
		return denyBlocked()
	}

	res := enrich.Result{Score: 100, DeviceType: "unknown"}
	if s.cfg.Enricher != nil {
		er, err := s.cfg.Enricher.EnrichLogin(ctx, enrich.Login{UserID: req.UserID, IP: req.IP,
			Username: cleanName(req.Username), Email: cleanName(req.Email),
			UserAgent: truncate(req.UserAgent, maxUserAgentLen), Locale: req.Locale, Route: req.Route, At: now})
		if err != nil {
			// Enrichment is best effort: a GeoIP or reputation failure must
			// not lock everyone out.
			s.log.Warn("login enrichment failed; registering without it", "user", req.UserID, "err", err)
		} else {
			res = er
		}
	}
	if res.Deny {
		// Choice: a denied login is not stored as a session (it never
		// became one the user could see or end); its tokens are published
		// as revoked so that they are refused even if the proxy let the
		// login answer through, and the alerts the policy raised are queued.
		reason := res.DenyReason
		if reason == "" {
			reason = protocol.ReasonPolicy
		}
		if err := s.st.RevokeKeys(ctx, allKeys, reason, latest, now); err != nil {
			return err
		}
		if reason == protocol.ReasonBlocked {
			s.refused(ctx, store.RefusalBlocked, now)
		} else {
			s.refused(ctx, store.RefusalPolicy, now)
		}
		if err := s.st.EnqueueAlerts(ctx, res.Alerts); err != nil {
			s.log.Warn("queueing policy alerts failed", "err", err)
		}
		msg := res.DenyMessage
		if msg == "" {
			msg = "Login refused by policy."
		}
		s.metrics.registrations.WithLabelValues("deny").Inc()
		writeJSON(w, http.StatusOK, protocol.RegisterResponse{Decision: protocol.DecisionDeny, Reason: reason, Message: msg, Score: res.Score})
		return nil
	}
	sess := &store.Session{
		UserID: req.UserID, IP: req.IP, UserAgent: truncate(req.UserAgent, maxUserAgentLen),
		LoginTime: now, LastActive: now,
		DeviceType: res.DeviceType, BrowserName: res.BrowserName, OSName: res.OSName, Geo: res.Geo,
		SecurityScore: res.Score, ScoreReasons: res.Reasons, Route: truncate(req.Route, 256), Locale: truncate(req.Locale, 64),
	}
	s.sealNames(sess, req)
	if err := s.st.CreateSession(ctx, sess, keys, res.Alerts); errors.Is(err, store.ErrBlocked) {
		return denyBlocked() // blocked since the check above
	} else if err != nil {
		return err
	}
	s.metrics.registrations.WithLabelValues("allow").Inc()
	s.registrationSucceeded(ctx, req, now)
	s.log.Info("session registered", "session", sess.ID, "user", sess.UserID, "score", sess.SecurityScore)
	writeJSON(w, http.StatusOK, protocol.RegisterResponse{SessionID: sess.ID, Decision: protocol.DecisionAllow, Score: sess.SecurityScore})
	return nil
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	var req protocol.RefreshRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := validKeys("presentedKeys", req.PresentedKeys, true); err != nil {
		return err
	}
	if err := validKeys("keys", req.Keys, false); err != nil {
		return err
	}
	if err := validKeys("refreshKeys", req.RefreshKeys, false); err != nil {
		return err
	}
	if req.Status < 100 || req.Status > 599 {
		return badRequest("status must be an HTTP status code")
	}
	ctx := r.Context()
	now := s.nowUTC()
	ok2xx := req.Status >= 200 && req.Status < 300
	var newKeys []store.SessionKey
	if ok2xx {
		newKeys = s.tokenKeys(req.Keys, req.RefreshKeys, req.ExpiresAt, req.RefreshExpiresAt, now)
	}
	var out store.RefreshOutcome
	var err error
	if ok2xx {
		out, err = s.st.Refresh(ctx, req.PresentedKeys, newKeys, now)
	} else {
		out, err = s.st.CheckRefresh(ctx, req.PresentedKeys, now)
	}
	if errors.Is(err, store.ErrNotFound) {
		// A session sessionsvc never saw (registered before it ran, or
		// purged): nothing to judge it by.
		writeJSON(w, http.StatusOK, protocol.RefreshResponse{Decision: protocol.DecisionAllow})
		return nil
	}
	if err != nil {
		return err
	}
	if out.Allowed {
		writeJSON(w, http.StatusOK, protocol.RefreshResponse{SessionID: out.SessionID, Decision: protocol.DecisionAllow})
		return nil
	}
	// Refused: the tokens the upstream just issued must not work either.
	if len(newKeys) > 0 {
		ks := make([]string, 0, len(newKeys))
		for _, k := range newKeys {
			ks = append(ks, k.Key)
		}
		if err := s.st.RevokeKeys(ctx, ks, out.Reason, s.latestExp(newKeys, now), now); err != nil {
			return err
		}
	}
	if out.Reason == protocol.ReasonReuse {
		s.log.Warn("refresh token reuse: session ended", "session", out.SessionID)
		s.metrics.ended.WithLabelValues(protocol.ReasonReuse).Inc()
		if sess, err := s.st.GetSession(ctx, out.SessionID); err == nil {
			s.sessionsEnded(ctx, []store.Session{*sess}, protocol.ReasonReuse, now)
		}
	}
	writeJSON(w, http.StatusOK, protocol.RefreshResponse{SessionID: out.SessionID, Decision: protocol.DecisionDeny, Reason: out.Reason})
	return nil
}

var knownReasons = map[string]bool{
	protocol.ReasonLogout: true, protocol.ReasonManual: true, protocol.ReasonIdle: true, protocol.ReasonExpired: true,
	protocol.ReasonBlocked: true, protocol.ReasonReuse: true, protocol.ReasonNotBefore: true, protocol.ReasonPolicy: true,
	protocol.ReasonLocked: true,
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	var req protocol.RevokeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := validKeys("keys", req.Keys, true); err != nil {
		return err
	}
	if req.Reason == "" {
		req.Reason = protocol.ReasonLogout
	}
	if !knownReasons[req.Reason] {
		return badRequest("reason %q is not a termination reason", truncate(req.Reason, 40))
	}
	ctx := r.Context()
	now := s.nowUTC()
	sess, err := s.st.FindSessionByKeys(ctx, req.Keys)
	if errors.Is(err, store.ErrNotFound) {
		if err := s.st.RevokeKeys(ctx, req.Keys, req.Reason, now.Add(s.cfg.RevocationTTL), now); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, protocol.RevokeResponse{Found: false})
		return nil
	}
	if err != nil {
		return err
	}
	// Every key named is revoked, also those that are not the session's
	// (a token never registered with it): in the same transaction.
	f := store.EndFilter{SessionIDs: []string{sess.ID}, AlsoRevoke: req.Keys, AlsoRevokeUntil: now.Add(s.cfg.RevocationTTL)}
	if _, err := s.endSessions(ctx, f, req.Reason, false, now); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.RevokeResponse{SessionID: sess.ID, Found: true})
	return nil
}

func (s *Server) activity(w http.ResponseWriter, r *http.Request) error {
	var batch []protocol.Activity
	if err := decodeJSON(r, &batch); err != nil {
		return err
	}
	if len(batch) > maxActivity {
		return badRequest("at most %d marks per batch", maxActivity)
	}
	now := s.nowUTC()
	// Marks from the future are clamped to now: activity may be coalesced,
	// never invented.
	limit := now.Add(time.Second)
	// A malformed mark is dropped, not the batch: the batch carries up to
	// maxActivity other sessions' activity, whose loss would end them as
	// idle. (Accepted says how many were taken.)
	marks := make([]store.ActivityMark, 0, len(batch))
	for i, a := range batch {
		if err := validKey(a.Key); err != nil || a.At <= 0 || a.At > maxUnix*1000 {
			s.log.Debug("activity mark dropped", "index", i, "key", truncate(a.Key, 40), "at", a.At, "err", err)
			continue
		}
		at := time.UnixMilli(a.At).UTC()
		if at.After(limit) {
			at = now
		}
		ip := a.IP
		if validIP("ip", ip) != nil {
			ip = "" // the mark stands; the address is unusable
		}
		marks = append(marks, store.ActivityMark{Key: a.Key, At: at, IP: ip})
	}
	// Tokens no session knows are registered first (a separate store path:
	// known sessions never reach it), so that their marks apply below.
	s.discover(r.Context(), s.discoveries(batch, now), now)
	s.metrics.activityBatch.Observe(float64(len(marks)))
	var updated int
	if s.activityBuf != nil {
		// Buffered: Updated counts keys whose buffered mark moved forward.
		var full bool
		updated, full = s.activityBuf.add(marks)
		if full {
			if err := s.FlushActivity(r.Context()); err != nil {
				return err
			}
		}
	} else {
		var err error
		if updated, err = s.st.RecordActivity(r.Context(), marks); err != nil {
			return err
		}
	}
	s.metrics.activityMarks.Add(float64(len(marks)))
	writeJSON(w, http.StatusOK, protocol.ActivityResponse{Accepted: len(marks), Updated: updated})
	return nil
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) error {
	q := parseSyncQuery(r.URL.RawQuery)
	if len(q.epoch) > 128 {
		return badRequest("epoch too long")
	}
	cursor, err := queryInt(q.cursor, "cursor", 0, 0, int64(math.MaxInt64))
	if err != nil {
		return err
	}
	limit, err := queryInt(q.limit, "limit", s.cfg.SyncLimit, 1, store.MaxChangesLimit)
	if err != nil {
		return err
	}
	wait, err := parseWait(q.wait)
	if err != nil {
		return err
	}
	contentType := jsonContentType
	switch q.format { // checked before a long-poll waits
	case protocol.FormatBinary:
		contentType = binaryPageContentType
	case "", "json":
	default:
		return badRequest("format must be %q or json", protocol.FormatBinary)
	}
	page, err := s.changes(r.Context(), q.epoch, cursor, limit, wait)
	if err != nil {
		return err
	}
	s.metrics.observeCursor(page.Cursor)
	b, err := s.syncBody(&page, q.format == protocol.FormatBinary)
	if err != nil {
		return fmt.Errorf("sync page at cursor %d: %w", cursor, err)
	}
	w.Header()["Content-Type"] = contentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
