package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/settings"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

func (s *Server) authenticateAdmin(r *http.Request) (*http.Request, error) {
	// As the user API answers (Strapi's message), the cause in details.
	refused := func(cause string) error {
		return &apiError{Status: http.StatusUnauthorized, Message: "Missing or invalid credentials", Details: map[string]any{"cause": cause}}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return r, refused("more than one Authorization header")
	}
	raw, ok := bearer(r)
	if !ok || raw == "" || len(raw) > 512 {
		return r, refused("missing or malformed admin bearer token")
	}
	tok, err := s.st.FindAdminToken(r.Context(), hashToken(raw), s.nowUTC())
	if errors.Is(err, store.ErrNotFound) {
		return r, refused("unknown or revoked admin token")
	}
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), ctxAdmin, tok.Name)), nil
}

func adminName(r *http.Request) string {
	n, _ := r.Context().Value(ctxAdmin).(string)
	return n
}

// paging is page/pageSize (1-based), also accepted as Strapi's
// pagination[page] / pagination[pageSize], or start/limit.
type paging struct {
	page, size int
}

func (p paging) offset() int { return (p.page - 1) * p.size }

func (p paging) meta(total int) map[string]any {
	pages := 0
	if p.size > 0 {
		pages = (total + p.size - 1) / p.size
	}
	return map[string]any{"page": p.page, "pageSize": p.size, "pageCount": pages, "total": total}
}

func firstOf(q url.Values, names ...string) string {
	for _, n := range names {
		if v := q.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// queryInt reads v, the text of the integer query parameter name: def
// when v is empty, else an integer from lo to hi, or a 400 saying so.
func queryInt[T int | int64](v, name string, def, lo, hi T) (T, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < int64(lo) || n > int64(hi) {
		if int64(hi) == math.MaxInt64 || int64(hi) == math.MaxInt {
			return def, badRequest("%s must be an integer of at least %d", name, lo)
		}
		return def, badRequest("%s must be an integer between %d and %d", name, lo, hi)
	}
	return T(n), nil
}

func parsePaging(r *http.Request, defSize int) (paging, error) {
	q := r.URL.Query()
	p := paging{page: 1, size: defSize}
	var err error
	if p.page, err = queryInt(firstOf(q, "page", "pagination[page]"), "page", 1, 1, 1_000_000); err != nil {
		return p, err
	}
	if p.size, err = queryInt(firstOf(q, "pageSize", "pagination[pageSize]", "limit"), "pageSize", defSize, 1, 1000); err != nil {
		return p, err
	}
	start, err := queryInt(firstOf(q, "start", "pagination[start]"), "start", -1, 0, math.MaxInt)
	if err != nil {
		return p, err
	}
	if start >= 0 {
		if start%p.size != 0 {
			return p, badRequest("start must be a multiple of pageSize")
		}
		p.page = start/p.size + 1
	}
	return p, nil
}

func parseStatus(v string) (store.Status, error) {
	switch strings.ToLower(v) {
	case "", "all":
		return store.StatusAny, nil
	case "active":
		return store.StatusActive, nil
	case "idle", "inactive":
		return store.StatusIdle, nil
	case "loggedout", "logged_out", "logged-out":
		return store.StatusLoggedOut, nil
	case "terminated":
		return store.StatusTerminated, nil
	}
	return "", badRequest("status must be one of all, active, idle, loggedout, terminated")
}

// parseSort reads sort=field, sort=field:desc or sort=-field.
func parseSort(v string) (string, bool, error) {
	if v == "" {
		return "loginTime", true, nil
	}
	desc := false
	field := v
	if strings.HasPrefix(field, "-") {
		desc, field = true, field[1:]
	}
	if f, dir, ok := strings.Cut(field, ":"); ok {
		field = f
		switch strings.ToLower(dir) {
		case "asc":
			desc = false
		case "desc":
			desc = true
		default:
			return "", false, badRequest("sort direction must be asc or desc")
		}
	}
	for _, f := range store.SortFields() {
		if f == field {
			return field, desc, nil
		}
	}
	return "", false, badRequest("cannot sort by %q (use loginTime, lastActive, logoutTime, userId, ipAddress or securityScore)", truncate(field, 40))
}

// adminListLimit is how many sessions the admin lists answer by default
// (upstream's MAX_SESSIONS_QUERY); page/pageSize select further pages.
const adminListLimit = 1000

// adminList answers a session list: upstream's {data, meta:{count,
// active, inactive}} with count, active and inactive over the sessions
// listed; meta.total and meta.pagination (ours) count the whole selection.
func (s *Server) adminList(w http.ResponseWriter, r *http.Request, base store.SessionQuery, countsOnly bool) error {
	q := r.URL.Query()
	pg, err := parsePaging(r, adminListLimit)
	if err != nil {
		return err
	}
	qq := base
	qq.Offset, qq.Limit = pg.offset(), pg.size
	if qq.Sort, qq.Desc, err = parseSort(q.Get("sort")); err != nil {
		return err
	}
	if v := firstOf(q, "status", "filter"); v != "" && base.Status == "" {
		// (a route that fixes the status, sessions/active, keeps it)
		if qq.Status, err = parseStatus(v); err != nil {
			return err
		}
	}
	if v := firstOf(q, "userId", "user"); v != "" && qq.UserID == "" {
		if err := validUserID(v); err != nil {
			return err
		}
		qq.UserID = v
	}
	if v := firstOf(q, "search", "q"); v != "" {
		if len(v) > 200 {
			return badRequest("search longer than 200 characters")
		}
		qq.Search = v
		qq.SearchLookup = searchLookup(s.cfg.Keyring, v)
	}
	if v := firstOf(q, "cursor", "after"); v != "" {
		qq.After = v // keyset paging: the page after meta.pagination.nextCursor
	}
	ctx := r.Context()
	now := s.nowUTC()
	qq.IdleBefore = now.Add(-s.InactivityTimeout(ctx))
	page, err := s.st.ListSessions(ctx, qq)
	if errors.Is(err, store.ErrBadCursor) {
		return badRequest("cursor is not a nextCursor of this list and sort")
	}
	if err != nil {
		return err
	}
	data, active := sessionview.List(page.Sessions, s.viewOptions(ctx, page.Sessions))
	meta := map[string]any{"count": len(data)}
	if !countsOnly {
		meta["active"], meta["inactive"] = active, len(data)-active
	}
	// Ours: the whole selection. countMode says how total was obtained:
	// "maintained" (exact, kept by the store), "exact" (counted) or
	// "capped" (counting stopped at countCap: total is a lower bound).
	meta["total"], meta["pagination"] = page.Total, withCursor(pg.meta(page.Total), page)
	meta["countMode"], meta["countCap"] = page.Count, store.CountCap
	// {"data": …, "meta": …} as json.Marshal of the map writes it, the
	// sessions by sessionview.AppendListJSON (reflection took json.Marshal
	// about 6 ms for 1,000 sessions).
	m, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	// The body's buffer is reused: a new 1.2 MB one per 1,000-row page
	// was cleared, then collected and returned to the OS (~2 ms a page).
	var buf []byte
	select {
	case buf = <-s.listBodies:
	default:
	}
	body := append(slices.Grow(buf[:0], 1200*len(data)+len(m)+32), `{"data":`...)
	if body, err = sessionview.AppendListJSON(body, data); err != nil {
		return err
	}
	body = append(append(append(body, `,"meta":`...), m...), '}', '\n')
	writeJSONBody(w, http.StatusOK, body)
	if cap(body) <= listBodyKeep {
		select {
		case s.listBodies <- body:
		default:
		}
	}
	return nil
}

// listBodyKeep bounds an admin list answer's buffer that Server.listBodies
// keeps for the next answers (a sync.Pool lost them at every collection,
// about every other page); a larger one is left to the collector.
const listBodyKeep = 4 << 20

// withCursor adds the keyset cursor of the next page to pagination meta.
func withCursor(m map[string]any, page store.SessionPage) map[string]any {
	m["nextCursor"] = page.Next
	m["totalCapped"] = page.TotalCapped
	return m
}

func (s *Server) adminSessions(w http.ResponseWriter, r *http.Request) error {
	return s.adminList(w, r, store.SessionQuery{}, false)
}

func (s *Server) adminActiveSessions(w http.ResponseWriter, r *http.Request) error {
	// Upstream: active and seen within the inactivity timeout.
	return s.adminList(w, r, store.SessionQuery{Status: store.StatusActive}, true)
}

// resolveUserID turns a route's user id (the app's id, or the user
// documentId the login answer gave) into the stored user id; "" when no
// session names that user.
func (s *Server) resolveUserID(ctx context.Context, uid string) (string, error) {
	p, err := s.st.ListSessions(ctx, store.SessionQuery{UserID: uid, Limit: 1})
	if err != nil {
		return "", err
	}
	if p.Total > 0 {
		return uid, nil
	}
	return s.userByDocumentID(ctx, uid)
}

func (s *Server) adminUserSessions(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("userId")
	if err := validUserID(uid); err != nil {
		return err
	}
	id, err := s.resolveUserID(r.Context(), uid)
	if err != nil {
		return err
	}
	if id == "" {
		id = uid // nobody: an empty list, as upstream
	}
	return s.adminList(w, r, store.SessionQuery{UserID: id}, true)
}

func (s *Server) adminTerminate(w http.ResponseWriter, r *http.Request) error {
	return s.adminOnSession(w, r, "terminated", func(ctx context.Context, sess *store.Session) error {
		if _, err := s.endSessions(ctx, store.EndFilter{SessionIDs: []string{sess.ID}}, protocol.ReasonManual, true, s.nowUTC()); err != nil {
			return err
		}
		s.log.Info("admin terminated session", "admin", adminName(r), "session", sess.ID)
		return nil
	})
}

func (s *Server) adminDelete(w http.ResponseWriter, r *http.Request) error {
	return s.adminOnSession(w, r, "permanently deleted", func(ctx context.Context, sess *store.Session) error {
		if err := s.st.DeleteSession(ctx, sess.ID, s.nowUTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.log.Info("admin deleted session", "admin", adminName(r), "session", sess.ID)
		return nil
	})
}

// adminOnSession applies act to the session the path's sessionId names and
// answers "Session <id> <done>". An id naming no session is answered the
// same, as upstream does: there is nothing to end or delete (its Document
// Service delete does not fail either).
func (s *Server) adminOnSession(w http.ResponseWriter, r *http.Request, done string, act func(context.Context, *store.Session) error) error {
	id := r.PathValue("sessionId")
	sess, err := sessionview.Resolve(r.Context(), s.st, id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
	case err != nil:
		return err
	default:
		if err := act(r.Context(), sess); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Session " + id + " " + done, "success": true})
	return nil
}

func (s *Server) adminTerminateAll(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("userId")
	if err := validUserID(uid); err != nil {
		return err
	}
	ctx := r.Context()
	id, err := s.resolveUserID(ctx, uid)
	if err != nil {
		return err
	}
	if id == "" {
		id = uid // no session known: still refuse the user's older tokens
	}
	now := s.nowUTC()
	ids, err := s.endSessions(ctx, store.EndFilter{UserID: id}, protocol.ReasonManual, true, now)
	if err != nil {
		return err
	}
	if err := s.st.SetNotBefore(ctx, id, now, now.Add(s.cfg.RevocationTTL), now); err != nil {
		return err
	}
	noteAudit(r, "terminated", len(ids))
	s.log.Info("admin terminated all sessions of user", "admin", adminName(r), "user", id, "count", len(ids))
	writeJSON(w, http.StatusOK, map[string]any{"message": "All sessions terminated for user " + uid, "success": true})
	return nil
}

func (s *Server) adminToggleBlock(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("userId")
	if err := validUserID(uid); err != nil {
		return err
	}
	var body struct {
		Blocked *bool `json:"blocked"` // ours: set instead of toggling
	}
	if err := readOptionalJSON(r, &body); err != nil {
		return err
	}
	ctx := r.Context()
	id, err := s.resolveUserID(ctx, uid)
	if err != nil {
		return err
	}
	cur := false
	if id == "" {
		// A user is known by their sessions or their block; upstream
		// answers 404 for a user it does not have. Blocking ahead of a
		// first login takes an explicit {"blocked": true}.
		if cur, err = s.st.IsBlocked(ctx, uid); err != nil {
			return err
		}
		if !cur && (body.Blocked == nil || !*body.Blocked) {
			return notFound("User not found")
		}
		id = uid
	} else if cur, err = s.st.IsBlocked(ctx, id); err != nil {
		return err
	}
	next := !cur
	if body.Blocked != nil {
		next = *body.Blocked
	}
	now := s.nowUTC()
	var active []store.Session
	if next && s.cfg.Enricher != nil {
		p, err := s.st.ListSessions(ctx, store.SessionQuery{UserID: id, ActiveOnly: true, Limit: 1000})
		if err != nil {
			return err
		}
		active = p.Sessions
	}
	if err := s.st.SetBlocked(ctx, id, next, now); err != nil {
		return err
	}
	if next {
		s.metrics.ended.WithLabelValues(protocol.ReasonBlocked).Add(float64(len(active)))
		// A block alerts once, sessions or none; setting a block the
		// user already had is not a new one (unless it ended sessions).
		if !cur || len(active) > 0 {
			s.userBlocked(ctx, id, active, now)
		}
	}
	word := "unblocked"
	if next {
		word = "blocked"
	}
	s.log.Info("admin changed user block", "admin", adminName(r), "user", id, "blocked", next)
	writeJSON(w, http.StatusOK, map[string]any{"message": "User " + word + " successfully", "blocked": next, "success": true})
	return nil
}

func (s *Server) adminCleanInactive(w http.ResponseWriter, r *http.Request) error {
	// Deletes every ended session (the Strapi plugin's "clean inactive":
	// isActive false), and nothing else: not the retention job's Purge,
	// which also forgets sent alerts and the failed-login counters.
	n, err := s.st.DeleteEnded(r.Context())
	if err != nil {
		return err
	}
	s.log.Info("admin deleted ended sessions", "admin", adminName(r), "count", n)
	writeJSON(w, http.StatusOK, map[string]any{"message": "Successfully deleted " + strconv.Itoa(n) + " inactive sessions", "success": true, "deletedCount": n})
	return nil
}

func (s *Server) adminGetSettings(w http.ResponseWriter, r *http.Request) error {
	if err := s.ReloadSettings(r.Context()); err != nil {
		return err
	}
	cur := s.settings.Load().Settings
	writeJSON(w, http.StatusOK, map[string]any{"settings": cur.Masked(), "success": true,
		"meta": map[string]any{"noEffect": settings.NoEffect}})
	return nil
}

// adminPutSettings stores the settings the way the Strapi plugin does
// (settings.Apply): unknown keys ignored (listed in meta.ignored), values
// clamped, the plugin's keys replaced.
func (s *Server) adminPutSettings(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !IsJSONType(ct) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyReadError(err)
	}
	if len(strings.TrimSpace(string(body))) == 0 || strings.TrimSpace(string(body)) == "null" {
		return badRequest("Settings data is required")
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	ctx := r.Context()
	cur, err := settings.Load(ctx, s.st, s.cfg.Keyring, s.cfg.InactivityTimeout)
	if err != nil {
		return err
	}
	// Strapi clients send {"settings": {...}} or the document itself.
	doc := body
	var wrapper struct {
		Settings rawJSON `json:"settings"`
	}
	if jsonObjectHasOnlyKey(body, "settings") && decodeStrictBytes(body, &wrapper) == nil && len(wrapper.Settings) > 0 {
		doc = wrapper.Settings
	}
	var next settings.Settings
	var ignored []string
	if r.URL.Query().Get("strict") == "1" {
		// Ours (the dashboard): merge, refuse unknown keys and bad values.
		if next, err = settings.Merge(cur, doc); err != nil {
			return jsonError(err)
		}
	} else if next, ignored, err = settings.Apply(cur, doc); err != nil {
		return badRequest("%v", err)
	}
	if err := settings.Save(ctx, s.st, s.cfg.Keyring, next); err != nil {
		var ve *settings.ValidationError
		if errors.As(err, &ve) {
			return &apiError{Status: http.StatusBadRequest, Message: ve.Error(), Details: map[string]any{"errors": ve.Problems}}
		}
		if errors.Is(err, settings.ErrNoEncryptionKey) {
			return badRequest("%v", err)
		}
		return err
	}
	s.keepSettings(next)
	s.limiter.reset()
	s.log.Info("admin saved settings", "admin", adminName(r), "ignored", ignored)
	if ignored == nil {
		ignored = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"settings": next.Masked(), "success": true, "message": "Settings saved successfully!",
		"meta": map[string]any{"ignored": ignored, "noEffect": settings.NoEffect}})
	return nil
}

func (s *Server) adminGeolocation(w http.ResponseWriter, r *http.Request) error {
	ip := r.PathValue("ip")
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return badRequest("Invalid IP address format")
	}
	if s.cfg.Geolocator == nil {
		return &apiError{Status: http.StatusNotImplemented, Message: "geolocation is not configured (no GeoIP database loaded)"}
	}
	data, err := s.cfg.Geolocator.Geolocate(r.Context(), addr.String())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": geolocationJSON(addr.String(), data)})
	return nil
}
