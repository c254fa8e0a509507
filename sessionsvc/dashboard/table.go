package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// countCap bounds how far the table counts matching sessions: an exact
// COUNT over a million rows costs more than the whole page budget, so
// beyond the cap the table says "2,000+" (the overview has exact totals).
const countCap = 2_000

// maxPageSize is the largest table page.
const maxPageSize = 100

// tableColumns maps the sort fields of the table to columns (the admin
// API's names).
var tableColumns = map[string]string{
	"loginTime": "login_time", "lastActive": "last_active", "logoutTime": "logout_time",
	"userId": "user_id", "ip": "ip", "ipAddress": "ip", "securityScore": "security_score",
}

// where renders a session query as SQL conditions, as the store does
// (same filters, same search columns, LIKE with escapes).
//
// pageCol is the column the page is ordered by ("" for counting). On
// SQLite the conditions then avoid the partial indexes on last_active and
// on ended sessions unless the page is ordered by their column
// ("+last_active", "NOT +active" cannot use them), so the planner walks the
// sort column's index and stops after one page instead of sorting every
// matching row.
//
// indexed narrows a search with the SQLite trigram index (see
// searchIndexed).
func (s *statsDB) where(q store.SessionQuery, pageCol string, indexed bool) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	la, ended := "last_active", "NOT active"
	if s.sqlite && pageCol != "" {
		if pageCol != "last_active" {
			la = "+last_active"
		}
		if pageCol != "logout_time" {
			ended = "NOT +active"
		}
	}
	if q.UserID != "" {
		conds = append(conds, "user_id = "+arg(q.UserID))
	}
	if q.ActiveOnly {
		conds = append(conds, "active")
	}
	idle := q.IdleBefore.UnixMilli()
	switch q.Status {
	case store.StatusActive:
		conds = append(conds, "active AND "+la+" >= "+arg(idle))
	case store.StatusIdle:
		conds = append(conds, "active AND "+la+" < "+arg(idle))
	case store.StatusLoggedOut:
		conds = append(conds, ended+" AND termination_reason = 'logout'")
	case store.StatusTerminated:
		conds = append(conds, ended+" AND termination_reason <> 'logout'")
	}
	if q.Search != "" {
		if m, ok := store.TrigramMatch(q.Search); ok && indexed {
			conds = append(conds, store.SQLiteSearchCandidates(arg(m)))
		}
		p := arg("%" + likeEscape(q.Search) + "%")
		var parts []string
		if s.sqlite && !strings.ContainsRune(q.Search, '\x1f') {
			// One LIKE on the joined columns, read from the login-time
			// index (store.SearchDocSQLite).
			parts = append(parts, store.SearchDocSQLite+" "+s.like+" "+p+` ESCAPE '\'`)
		} else {
			for _, c := range store.SearchColumns {
				parts = append(parts, c+" "+s.like+" "+p+` ESCAPE '\'`)
			}
		}
		conds = append(conds, "("+strings.Join(parts, " OR ")+")")
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// searchIndexed reports whether q's search should use the SQLite trigram
// index: only when it narrows the term to few sessions (a common term is
// found faster by walking the page's sort index).
func (s *statsDB) searchIndexed(ctx context.Context, q store.SessionQuery) (bool, error) {
	if q.Search == "" || !s.sqlite {
		return false, nil
	}
	const ttl, maxTerms = 10 * time.Second, 256
	now := time.Now()
	s.selMu.Lock()
	e, hit := s.selective[q.Search]
	s.selMu.Unlock()
	if hit && now.Sub(e.at) < ttl {
		return e.indexed, nil
	}
	ok, err := store.SearchIsSelective(ctx, s.db, q.Search)
	if err != nil {
		return false, fmt.Errorf("dashboard search: %w", err)
	}
	s.selMu.Lock()
	if s.selective == nil || len(s.selective) >= maxTerms {
		s.selective = map[string]selectivity{}
	}
	s.selective[q.Search] = selectivity{indexed: ok, at: now}
	s.selMu.Unlock()
	return ok, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// pageIDs returns the ids of one page of the selection, in order.
func (s *statsDB) pageIDs(ctx context.Context, q store.SessionQuery) ([]string, error) {
	col, ok := tableColumns[q.Sort]
	if !ok {
		return nil, fmt.Errorf("cannot sort by %q", q.Sort)
	}
	indexed, err := s.searchIndexed(ctx, q)
	if err != nil {
		return nil, err
	}
	cond, args := s.where(q, col, indexed)
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM sessions`+cond+` ORDER BY `+col+dir+`, `+s.tiebreak+dir+
		` LIMIT `+strconv.Itoa(q.Limit)+` OFFSET `+strconv.Itoa(q.Offset), args...)
	if err != nil {
		return nil, fmt.Errorf("dashboard table: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("dashboard table: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dashboard table: %w", err)
	}
	return ids, nil
}

// page returns the ids of one table page and the (capped) number of
// matching sessions.
func (s *statsDB) page(ctx context.Context, q store.SessionQuery) (ids []string, count int, capped bool, err error) {
	if ids, err = s.pageIDs(ctx, q); err != nil {
		return nil, 0, false, err
	}
	if len(ids) < q.Limit && (len(ids) > 0 || q.Offset == 0) {
		// A short page is the last one: the count is exact without another scan.
		return ids, q.Offset + len(ids), false, nil
	}
	indexed, err := s.searchIndexed(ctx, q)
	if err != nil {
		return nil, 0, false, err
	}
	cond, args := s.where(q, "", indexed)
	count, capped, err = s.cappedCount(ctx, cond, args)
	return ids, count, capped, err
}

func (s *statsDB) cappedCount(ctx context.Context, cond string, args []any) (int, bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM sessions`+cond+` LIMIT `+strconv.Itoa(countCap+1)+`) AS capped`, args...).Scan(&n)
	if err != nil {
		return 0, false, fmt.Errorf("dashboard table count: %w", err)
	}
	if n > countCap {
		return countCap, true, nil
	}
	return n, false, nil
}

// tableQuery reads the table's parameters: status, search, sort, page, pageSize.
func (d *Dashboard) tableQuery(r *http.Request) (store.SessionQuery, int, int, error) {
	q, err := d.exportQuery(r)
	if err != nil {
		return q, 0, 0, err
	}
	in := r.URL.Query()
	page, size := 1, 25
	if v := in.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1_000_000 {
			return q, 0, 0, errors.New("page must be a positive integer")
		}
	}
	if v := in.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxPageSize {
			return q, 0, 0, fmt.Errorf("pageSize must be between 1 and %d", maxPageSize)
		}
	}
	q.Offset, q.Limit = (page-1)*size, size
	return q, page, size, nil
}

// listSessions answers the sessions table. With SQL access it pages by
// index and counts up to countCap; the rows themselves come from the store.
// Without it, the admin API answers (exact counts).
func (d *Dashboard) listSessions(w http.ResponseWriter, r *http.Request, s *session) {
	if d.stats == nil {
		d.forward(w, r, s, http.MethodGet, "/sessions", listQuery(r), nil)
		return
	}
	q, page, size, err := d.tableQuery(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	ctx := r.Context()
	exact, err := d.resolveSearch(ctx, &q, r.URL.Query().Get("match"))
	if err != nil {
		d.storeError(w, "sessions", err)
		return
	}
	ids, count, capped, err := d.stats.page(ctx, q)
	if err != nil {
		d.storeError(w, "sessions", err)
		return
	}
	// Open sessions among the selection (capped too).
	aq := q
	aq.Status = store.StatusActive
	if q.Status != store.StatusAny && q.Status != store.StatusActive {
		aq.Status = q.Status
	}
	active, activeCapped := 0, false
	if q.Status == store.StatusAny || q.Status == store.StatusActive {
		indexed, err := d.stats.searchIndexed(r.Context(), aq)
		if err != nil {
			d.storeError(w, "sessions", err)
			return
		}
		cond, args := d.stats.where(aq, "", indexed)
		if active, activeCapped, err = d.stats.cappedCount(ctx, cond, args); err != nil {
			d.storeError(w, "sessions", err)
			return
		}
	}
	list := make([]store.Session, 0, len(ids))
	for _, id := range ids {
		ss, err := d.st.GetSession(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			d.storeError(w, "sessions", err)
			return
		}
		list = append(list, *ss)
	}
	data, _ := sessionview.List(list, d.viewOptions(ctx, list))
	pages := (count + size - 1) / size
	if capped && page >= pages {
		pages = page + 1 // there is more beyond the counted part
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{
		"count": count, "countCapped": capped, "active": active, "activeCapped": activeCapped, "exactMatch": exact,
		"pagination": map[string]any{"page": page, "pageSize": size, "pageCount": pages, "total": count, "totalCapped": capped},
	}})
}

// resolveSearch narrows a search that names one user or one session
// exactly (an indexed lookup) unless match=contains asks for the substring
// search over every column, which reads every row. It returns what matched
// exactly: "user", "session" or "".
func (d *Dashboard) resolveSearch(ctx context.Context, q *store.SessionQuery, match string) (string, error) {
	if q.Search == "" || match == "contains" || d.stats == nil {
		return "", nil
	}
	term := strings.TrimSpace(q.Search)
	var one int
	err := d.stats.db.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE user_id = $1 LIMIT 1`, term).Scan(&one)
	if err == nil {
		q.UserID, q.Search = term, ""
		return "user", nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("dashboard search: %w", err)
	}
	// A user's exact username, email or documentId (stored sealed: matched
	// by its keyed hash).
	if d.kr.Enabled() {
		var toks []string
		for _, k := range []string{"d", "u", "e"} {
			toks = append(toks, d.kr.LookupTokens(k, term)...)
		}
		uid, err := d.st.UserIDByLookup(ctx, toks)
		switch {
		case err == nil:
			q.UserID, q.Search = uid, ""
			return "user", nil
		case !errors.Is(err, store.ErrNotFound):
			return "", fmt.Errorf("dashboard search: %w", err)
		}
	}
	if strings.HasPrefix(term, "sess_") {
		if _, err := d.st.GetSession(ctx, term); err == nil {
			q.Search = term // the id column matches it, and only it
			return "session", nil
		}
	}
	return "", nil
}
