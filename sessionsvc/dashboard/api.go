package dashboard

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// adminAPI is the admin API's path prefix.
const adminAPI = "/magic-sessionmanager"

// recorder captures an in-process admin API answer.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

var errNoAPI = errors.New("the admin API is not reachable in process")

// callAPI runs one admin API request in process with the signed-in admin
// token as the bearer. apiPath is below adminAPI, its dynamic segments
// escaped with seg.
func (d *Dashboard) callAPI(r *http.Request, s *session, method, apiPath string, query url.Values, body []byte) (*recorder, error) {
	h := d.cfg.API
	if h == nil {
		if hs, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && hs.Handler != nil {
			h = hs.Handler
		}
	}
	if h == nil {
		return nil, errNoAPI
	}
	target := adminAPI + apiPath // dynamic segments are already escaped (seg)
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("admin API request: %w", err)
	}
	req.RequestURI = target
	req.Host = r.Host
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("User-Agent", "meshsession-dashboard")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{h: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec, nil
}

// seg escapes one dynamic path segment.
func seg(v string) string { return url.PathEscape(v) }

// relay copies an admin API answer to the browser.
func relay(w http.ResponseWriter, rec *recorder) {
	ct := rec.h.Get("Content-Type")
	if ct == "" {
		ct = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	if ra := rec.h.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

func (d *Dashboard) forward(w http.ResponseWriter, r *http.Request, s *session, method, apiPath string, query url.Values, body []byte) {
	rec, err := d.callAPI(r, s, method, apiPath, query, body)
	if err != nil {
		d.log.Error("dashboard: admin API call failed", "path", apiPath, "err", err)
		server.WriteError(w, http.StatusInternalServerError, err.Error(), nil)
		return
	}
	relay(w, rec)
}

// forwardBody forwards the request with its body, which the API wrapper
// bounds to server.MaxAPIBody (beyond: 413).
func (d *Dashboard) forwardBody(w http.ResponseWriter, r *http.Request, s *session, method, apiPath string, query url.Values) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		status, msg := server.BodyReadProblem(err)
		server.WriteError(w, status, msg, nil)
		return
	}
	d.forward(w, r, s, method, apiPath, query, body)
}

// listQuery keeps the list parameters the admin API understands.
func listQuery(r *http.Request) url.Values {
	in := r.URL.Query()
	out := url.Values{}
	for _, k := range []string{"page", "pageSize", "status", "search", "sort"} {
		if v := in.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

func (d *Dashboard) terminate(w http.ResponseWriter, r *http.Request, s *session) {
	d.forward(w, r, s, http.MethodPost, "/sessions/"+seg(r.PathValue("id"))+"/terminate", nil, nil)
}

func (d *Dashboard) terminateAll(w http.ResponseWriter, r *http.Request, s *session) {
	d.forward(w, r, s, http.MethodPost, "/user/"+seg(r.PathValue("id"))+"/terminate-all", nil, nil)
}

func (d *Dashboard) block(w http.ResponseWriter, r *http.Request, s *session) {
	var body struct {
		Blocked *bool `json:"blocked"`
	}
	const usage = `send {"blocked": true} or {"blocked": false}`
	if !decodeBody(w, r, &body, usage) {
		return
	}
	if body.Blocked == nil {
		server.WriteError(w, http.StatusBadRequest, usage, nil)
		return
	}
	b, _ := json.Marshal(map[string]bool{"blocked": *body.Blocked})
	d.forward(w, r, s, http.MethodPost, "/user/"+seg(r.PathValue("id"))+"/toggle-block", nil, b)
}

func (d *Dashboard) getSettings(w http.ResponseWriter, r *http.Request, s *session) {
	d.forward(w, r, s, http.MethodGet, "/settings", nil, nil)
}

func (d *Dashboard) putSettings(w http.ResponseWriter, r *http.Request, s *session) {
	// strict: the dashboard's form wants field errors, not upstream's clamping.
	d.forwardBody(w, r, s, http.MethodPut, "/settings", url.Values{"strict": {"1"}})
}

// sessionView is a session as the dashboard shows it: the same view the
// admin API answers (sessionview).
type sessionView = sessionview.Session

// viewOptions are the view options of the current settings.
func (d *Dashboard) viewOptions(ctx context.Context, list []store.Session) sessionview.Options {
	set := d.cfg.Settings(ctx)
	o := sessionview.Options{Now: d.now().UTC(), Inactivity: set.InactivityDuration(), Scoring: set.EnableSecurityScoring, Keyring: d.kr}
	if ids, err := sessionview.AppIDs(ctx, d.st, list); err == nil {
		o.AppIDs = ids
	} else {
		d.log.Warn("dashboard: looking up the sessions' app ids failed", "err", err)
	}
	return o
}

func (d *Dashboard) storeError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		server.WriteError(w, http.StatusNotFound, what+" not found", nil)
	case errors.Is(err, store.ErrUnavailable):
		server.WriteError(w, http.StatusServiceUnavailable, "sessionsvc cannot reach its database right now; retry in a moment", map[string]any{"code": "unavailable"})
	default:
		d.log.Error("dashboard: store call failed", "what", what, "err", err)
		server.WriteError(w, http.StatusInternalServerError, "reading "+what+" failed; see the sessionsvc log", nil)
	}
}

func (d *Dashboard) sessionDetail(w http.ResponseWriter, r *http.Request, _ *session) {
	id := r.PathValue("id")
	if id == "" || len(id) > 128 {
		server.WriteError(w, http.StatusBadRequest, "bad session id", nil)
		return
	}
	ctx := r.Context()
	ss, err := sessionview.Resolve(ctx, d.st, id)
	if errors.Is(err, store.ErrInvalid) {
		err = store.ErrNotFound
	}
	if err != nil {
		d.storeError(w, "session", err)
		return
	}
	blocked, err := d.st.IsBlocked(ctx, ss.UserID)
	if err != nil {
		d.storeError(w, "block state", err)
		return
	}
	one := []store.Session{*ss}
	out := map[string]any{"data": sessionview.Of(ss, d.viewOptions(ctx, one)), "userBlocked": blocked,
		"reasons": reasonCodes(ss.ScoreReasons)}
	if ss.TerminatedManually && ss.LogoutTime != nil && d.stats != nil {
		// Who ended it: the audit event of the admin action at that time.
		if by, err := d.stats.endedBy(ctx, ss.ID, ss.UserID, *ss.LogoutTime); err != nil {
			d.log.Warn("dashboard: reading who ended a session failed", "session", ss.ID, "err", err)
		} else if by != "" {
			out["endedBy"] = by
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type countItem struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func topCounts(m map[string]int, n int) []countItem {
	out := make([]countItem, 0, len(m))
	for k, v := range m {
		out = append(out, countItem{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// userView is a user's sessions (through the admin API), block state and
// the countries and devices seen in their latest 1,000 sessions.
func (d *Dashboard) userView(w http.ResponseWriter, r *http.Request, s *session) {
	uid := r.PathValue("id")
	rec, err := d.callAPI(r, s, http.MethodGet, "/user/"+seg(uid)+"/sessions", listQuery(r), nil)
	if err != nil {
		server.WriteError(w, http.StatusInternalServerError, err.Error(), nil)
		return
	}
	if rec.status != http.StatusOK {
		relay(w, rec)
		return
	}
	ctx := r.Context()
	blocked, err := d.st.IsBlocked(ctx, uid)
	if err != nil {
		d.storeError(w, "block state", err)
		return
	}
	page, err := d.st.ListSessions(ctx, store.SessionQuery{UserID: uid, Sort: "loginTime", Desc: true, Limit: 1000})
	if err != nil {
		d.storeError(w, "sessions", err)
		return
	}
	countries, devices, browsers := map[string]int{}, map[string]int{}, map[string]int{}
	for _, ss := range page.Sessions {
		c := "?"
		if ss.Geo != nil && (ss.Geo.Country != "" || ss.Geo.CountryCode != "") {
			c = ss.Geo.Country
			if c == "" {
				c = ss.Geo.CountryCode
			}
		}
		countries[c]++
		dev := orUnknown(ss.DeviceType)
		if ss.OSName != "" {
			dev += " · " + ss.OSName // an unknown OS is left out, not shown as "?"
		}
		devices[dev]++
		browsers[orUnknown(ss.BrowserName)]++
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"userId": uid, "blocked": blocked, "sessions": json.RawMessage(rec.body.Bytes()),
		"countries": topCounts(countries, 0), "devices": topCounts(devices, 0), "browsers": topCounts(browsers, 0),
	})
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func (d *Dashboard) listAlerts(w http.ResponseWriter, r *http.Request, _ *session) {
	list, err := d.st.ListAlerts(r.Context(), true, 200)
	if err != nil {
		d.storeError(w, "failed deliveries", err)
		return
	}
	out := make([]alert.AlertJSON, 0, len(list))
	for _, a := range list {
		out = append(out, alert.ToJSON(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (d *Dashboard) retryAlert(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		server.WriteError(w, http.StatusBadRequest, "bad delivery id", nil)
		return
	}
	now := d.now().UTC()
	if err := d.st.RetryAlert(r.Context(), id, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			server.WriteError(w, http.StatusConflict, "this delivery has not failed (pending or sent): only a failed delivery can be retried", nil)
			return
		}
		d.storeError(w, "delivery", err)
		return
	}
	det, _ := json.Marshal(map[string]any{"ip": server.ClientIP(r), "via": "dashboard"})
	if err := d.st.AppendAudit(r.Context(), []store.AuditEvent{{At: now, Event: server.AuditAlertRetried, SubjectKind: "alert",
		Subject: strconv.FormatInt(id, 10), Actor: s.Name, Detail: det}}); err != nil {
		d.log.Warn("dashboard: recording the retry in the audit trail failed", "alert", id, "err", err)
	}
	d.log.Info("dashboard: delivery queued again", "admin", s.Name, "alert", id)
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// Export limits.
const (
	exportPage = 1000
	exportMax  = 100_000
)

var statuses = map[string]store.Status{"": store.StatusAny, "all": store.StatusAny, "active": store.StatusActive,
	"idle": store.StatusIdle, "loggedout": store.StatusLoggedOut, "terminated": store.StatusTerminated}

// exportQuery reads the table's selection (status, search, sort).
func (d *Dashboard) exportQuery(r *http.Request) (store.SessionQuery, error) {
	in := r.URL.Query()
	q := store.SessionQuery{Sort: "loginTime", Desc: true}
	st, ok := statuses[strings.ToLower(in.Get("status"))]
	if !ok {
		return q, errors.New("status must be one of all, active, idle, loggedout, terminated")
	}
	q.Status = st
	if v := in.Get("search"); v != "" {
		if len(v) > 200 {
			return q, errors.New("search longer than 200 characters")
		}
		q.Search = v
		for _, k := range []string{"d", "u", "e"} {
			q.SearchLookup = append(q.SearchLookup, d.kr.LookupTokens(k, v)...)
		}
	}
	if v := in.Get("sort"); v != "" {
		desc := false
		if strings.HasPrefix(v, "-") {
			desc, v = true, v[1:]
		}
		if f, dir, ok := strings.Cut(v, ":"); ok {
			v, desc = f, strings.EqualFold(dir, "desc")
		}
		found := false
		for _, f := range store.SortFields() {
			found = found || f == v
		}
		if !found {
			return q, fmt.Errorf("cannot sort by %q", v)
		}
		q.Sort, q.Desc = v, desc
	}
	if v := in.Get("userId"); v != "" {
		q.UserID = v
	}
	q.IdleBefore = d.now().UTC().Add(-d.cfg.Settings(r.Context()).InactivityDuration())
	return q, nil
}

var csvHeader = []string{"documentId", "sessionId", "userId", "username", "email", "ipAddress", "country", "city", "deviceType", "browserName", "osName",
	"userAgent", "loginTime", "lastActive", "logoutTime", "isActive", "terminationReason", "securityScore"}

// csvCell neutralises spreadsheet formulas in exported text.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvRow(v sessionView) []string {
	country, city := "", ""
	if g := v.GeoLocation; g != nil {
		country, city = deref(g.Country), deref(g.City)
		if country == "" {
			country = deref(g.CountryCode)
		}
	}
	score := ""
	if v.SecurityScore != nil {
		score = strconv.Itoa(*v.SecurityScore)
	}
	logout := ""
	if v.LogoutTime != nil {
		logout = v.LogoutTime.UTC().Format(time.RFC3339)
	}
	row := []string{v.DocumentID, v.SessionID, v.UserID, deref(v.User.Username), deref(v.User.Email), v.IPAddress, country, city, v.DeviceType, v.BrowserName, v.OSName,
		v.UserAgent, v.LoginTime.UTC().Format(time.RFC3339), v.LastActive.UTC().Format(time.RFC3339), logout,
		strconv.FormatBool(v.IsActive), deref(v.TerminationReason), score}
	for i := range row {
		row[i] = csvCell(row[i])
	}
	return row
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// export streams the current selection as CSV or JSON (at most exportMax rows).
func (d *Dashboard) export(w http.ResponseWriter, r *http.Request, _ *session) {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		server.WriteError(w, http.StatusBadRequest, "format must be csv or json", nil)
		return
	}
	q, err := d.exportQuery(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	ctx := r.Context()
	if _, err := d.resolveSearch(ctx, &q, r.URL.Query().Get("match")); err != nil {
		d.storeError(w, "sessions", err)
		return
	}
	now := d.now().UTC()
	// Rows come page by page, by index where the dashboard has SQL access
	// (the store's ListSessions counts the whole selection on every call).
	q.Limit = exportPage
	next := func(offset int) ([]store.Session, error) {
		q.Offset = offset
		if d.stats == nil {
			p, err := d.st.ListSessions(ctx, q)
			return p.Sessions, err
		}
		ids, err := d.stats.pageIDs(ctx, q)
		if err != nil {
			return nil, err
		}
		out := make([]store.Session, 0, len(ids))
		for _, id := range ids {
			ss, err := d.st.GetSession(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, *ss)
		}
		return out, nil
	}
	page, err := next(0)
	if err != nil {
		d.storeError(w, "sessions", err)
		return
	}
	name := "sessions-" + now.Format("20060102-150405") + "." + format
	w.Header().Set("X-Export-Limit", strconv.Itoa(exportMax))
	x := startExport(w, name, format, csvHeader)
	for {
		o := d.viewOptions(ctx, page)
		for i := range page {
			v := sessionview.Of(&page[i], o)
			x.add(v, func() []string { return csvRow(v) })
		}
		if len(page) < exportPage || x.n >= exportMax {
			break
		}
		if page, err = next(x.n); err != nil {
			d.log.Warn("dashboard: export stopped early", "rows", x.n, "err", err)
			break
		}
	}
	x.end()
}

// exportWriter writes an export's rows: CSV records, or the elements of
// a JSON array.
type exportWriter struct {
	w   io.Writer
	csv *csv.Writer // nil: JSON
	n   int         // rows written
}

// startExport writes an export's headers and opening: the CSV header row
// (format "csv"), or the JSON array's "[".
func startExport(w http.ResponseWriter, name, format string, header []string) *exportWriter {
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	x := &exportWriter{w: w}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		x.csv = csv.NewWriter(w)
		_ = x.csv.Write(header)
		return x
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = io.WriteString(w, "[")
	return x
}

// add writes one row: cells() as a CSV record, or v as the array's next
// element.
func (x *exportWriter) add(v any, cells func() []string) {
	if x.csv != nil {
		_ = x.csv.Write(cells())
	} else {
		b, _ := json.Marshal(v)
		if x.n > 0 {
			_, _ = io.WriteString(x.w, ",\n")
		}
		_, _ = x.w.Write(b)
	}
	x.n++
}

// end finishes the export: the CSV flushed, or the array closed.
func (x *exportWriter) end() {
	if x.csv != nil {
		x.csv.Flush()
		return
	}
	_, _ = io.WriteString(x.w, "]\n")
}

// decodeBody decodes r's JSON body strictly (unknown fields and trailing
// data refused) into v; on failure it answers — 413 past the size limit,
// 408 or 400 for a body that did not arrive, else 400 with usage — and
// reports false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, usage string) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); errors.Is(terr, io.EOF) {
			return true
		} else if terr != nil {
			err = terr
		} else {
			err = errors.New("data after the JSON value")
		}
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	if errors.As(err, &mbe) || errors.As(err, &ne) {
		status, msg := server.BodyReadProblem(err)
		server.WriteError(w, status, msg, nil)
		return false
	}
	server.WriteError(w, http.StatusBadRequest, usage, nil)
	return false
}
