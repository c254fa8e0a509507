package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

var sortColumns = map[string]string{
	"":              "login_time",
	"lastActive":    "last_active",
	"loginTime":     "login_time",
	"logoutTime":    "logout_time",
	"userId":        "user_id",
	"ip":            "ip",
	"ipAddress":     "ip",
	"securityScore": "security_score",
}

// SortFields lists the sort names ListSessions accepts.
func SortFields() []string {
	out := make([]string, 0, len(sortColumns))
	for k := range sortColumns {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// ListSessions reads one page of sessions. Every sort has an index ending
// in id (migrations 0050, 0080), so a page is an index walk that stops after it;
// a keyset cursor (After) makes any page cost the same as the first.
// Totals: unfiltered lists read the maintained counts (session_counts);
// filtered ones count, but stop at CountCap unless ExactTotal is set (a
// short first page is its own exact count). SessionPage.Count says which.
//
// Each row's LastActive is read through session_seen (the latest activity
// mark); the active and idle filters and the lastActive sort use the
// merged column, which MergeActivity keeps behind the marks by one merge
// round while activity stays below its rate.
func (s *sqlStore) ListSessions(ctx context.Context, q SessionQuery) (SessionPage, error) {
	col, ok := sortColumns[q.Sort]
	if !ok {
		return SessionPage{}, fmt.Errorf("list sessions: unknown sort %q: %w", q.Sort, ErrInvalid)
	}
	pageCol := col
	fence, counted := false, false
	if (q.Status == StatusActive || q.Status == StatusIdle) && col != "last_active" {
		// Few sessions seen recently (or few idle ones) sorted by another
		// column: walking the sort index would read most of the table
		// before finding a page. Count them on their own index (up to
		// fenceRows); when few, read them by it first and sort them.
		// (PostgreSQL's estimate is no guide here: the recent end of
		// last_active is past its statistics, and the index is partial,
		// so the planner cannot look the end up; it guessed 6 rows for
		// 23,000.)
		counted = true
		w, a, _, err := s.sessionWhere(ctx, SessionQuery{Status: q.Status, IdleBefore: q.IdleBefore}, "", nil)
		if err != nil {
			return SessionPage{}, err
		}
		var n int
		if err := s.readRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM sessions WHERE `+strings.Join(w, " AND ")+
			` LIMIT `+strconv.Itoa(fenceRows+1)+`) AS c`, a...).Scan(&n); err != nil {
			return SessionPage{}, s.wrap("list sessions", err)
		}
		if n <= fenceRows {
			pageCol, fence = "", true
		}
	}
	// What the trigram index says of the term, asked once per list.
	memo := &searchMemo{}
	where, args, activeSplit, err := s.sessionWhere(ctx, q, pageCol, memo)
	if err != nil {
		return SessionPage{}, err
	}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 25
	}
	limit = min(limit, 1000)
	offset := max(q.Offset, 0)
	cmp, dir := ">", " ASC"
	if q.Desc {
		cmp, dir = "<", " DESC"
	}
	// By logout time, the keyset differs for active sessions (no logout
	// time) and ended ones: activeAfter and endedAfter.
	var activeAfter, endedAfter string
	if q.After != "" {
		v, id, err := decodeCursor(q.After, col, q.Desc)
		if err != nil {
			return SessionPage{}, fmt.Errorf("list sessions: %w", err)
		}
		if col == "logout_time" {
			activeAfter, endedAfter = s.logoutKeyset(v, id, q.Desc, cmp, arg)
			if !activeSplit {
				if q.Status == StatusLoggedOut || q.Status == StatusTerminated {
					where = append(where, endedAfter)
				} else {
					where = append(where, activeAfter)
				}
			}
		} else {
			where = append(where, "("+col+", id) "+cmp+" ("+arg(v)+", "+arg(id)+")")
		}
		offset = 0
	}
	order := ` ORDER BY ` + col + dir + `, id` + dir
	// Active sessions have no logout time: by it, they are in id order.
	activeOrder := order
	if col == "logout_time" {
		activeOrder = ` ORDER BY id` + dir
		if !activeSplit && q.Status != StatusLoggedOut && q.Status != StatusTerminated {
			order = activeOrder
		}
	}
	var query string
	paged := false
	if narrow, nargs, ok, err := s.searchPageByLoginTime(ctx, q, col, dir, cmp, offset, limit, memo); err != nil {
		return SessionPage{}, err
	} else if ok {
		query, args, paged = narrow, nargs, true
	} else if (col == "last_active" || col == "logout_time") && activeSplit {
		// Merge the active and the ended walks (each on its own index;
		// there is no index of all sessions by these columns): each
		// stops after the page.
		k := strconv.Itoa(offset + limit + 1)
		half := func(ord string, extra ...string) string {
			conds := append(append([]string(nil), where...), extra...)
			return `SELECT ` + sessionCols + ` FROM sessions WHERE ` + strings.Join(conds, " AND ") + ord + ` LIMIT ` + k
		}
		act, end := []string{"active"}, []string{"NOT active"}
		if activeAfter != "" {
			act, end = append(act, activeAfter), append(end, endedAfter)
		}
		query = `SELECT ` + sessionCols + ` FROM (SELECT * FROM (` + half(activeOrder, act...) + `) AS a UNION ALL SELECT * FROM (` +
			half(order, end...) + `) AS b) AS u` + order
	} else {
		cond := ""
		if len(where) > 0 {
			cond = " WHERE " + strings.Join(where, " AND ")
		}
		query = `SELECT ` + sessionCols + ` FROM sessions` + cond + order
		if fence {
			// LIMIT -1 keeps SQLite from flattening the subquery, OFFSET 0
			// PostgreSQL.
			keep := ` LIMIT -1`
			if s.d.name() == "postgres" {
				keep = ` OFFSET 0`
			}
			query = `SELECT ` + sessionCols + ` FROM (SELECT ` + sessionCols + ` FROM sessions` + cond + keep + `) AS f` + order
		}
		if s.d.name() == "postgres" && !counted && len(where) > 0 && q.Search == "" {
			// A filter on another column than the sort (recently active
			// sessions sorted by login) tempts the planner to walk the
			// sort index, expecting matches early; when they are few and
			// clustered elsewhere it reads the whole table. When the
			// planner expects few matches, read them by their own index
			// first (OFFSET 0 fences the subquery) and sort them. (Not for
			// a search: its LIKE has no index but the trigram candidates.)
			est, err := s.estimateRows(ctx, `SELECT 1 FROM sessions`+cond, args)
			if err != nil {
				return SessionPage{}, err
			}
			if est <= fenceRows {
				query = `SELECT ` + sessionCols + ` FROM (SELECT ` + sessionCols + ` FROM sessions` + cond + ` OFFSET 0) AS f` + order
			}
		}
	}
	if !paged {
		query += ` LIMIT ` + strconv.Itoa(limit+1) + ` OFFSET ` + strconv.Itoa(offset)
	}
	rows, err := s.read(ctx, query, args...)
	if err != nil {
		return SessionPage{}, s.wrap("list sessions", err)
	}
	var page SessionPage
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return SessionPage{}, s.wrap("scan session", err)
		}
		page.Sessions = append(page.Sessions, *ss)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return SessionPage{}, s.wrap("list sessions", err)
	}
	more := len(page.Sessions) > limit
	if more {
		page.Sessions = page.Sessions[:limit]
		last := &page.Sessions[limit-1]
		page.Next = encodeCursor(col, q.Desc, sortValue(col, last), last.ID)
	}
	// The cursor holds the merged lastActive the page is ordered by; the
	// rows show the latest mark.
	if err := s.overlaySeen(ctx, page.Sessions); err != nil {
		return SessionPage{}, err
	}
	if err := s.countSessions(ctx, q, &page, offset, more, memo); err != nil {
		return SessionPage{}, err
	}
	return page, nil
}

// searchPageByLoginTime returns, on PostgreSQL, the query of a page of a
// common search term by login time, with no other filter: it walks the
// narrow session_search index (login_time, id, doc; migration 0090) for the
// page's ids and reads only those sessions, where the walk of sessions by
// login time would read every row it tests (some 18 for each match of a
// country). doc LIKE the lower-cased term is the search's exact condition
// (doc holds the searched columns lower-cased, joined by \x1f, which the
// term must not hold: ILIKE lower-cases both sides); names match by their lookup tokens as in searchConds. ok is false
// when the query does not apply, or when the trigram index expects few
// matches (searchConds then reads them by it).
func (s *sqlStore) searchPageByLoginTime(ctx context.Context, q SessionQuery, col, dir, cmp string, offset, limit int, memo *searchMemo) (query string, args []any, ok bool, err error) {
	if s.d.name() != "postgres" || q.Search == "" || col != "login_time" || q.UserID != "" || q.ActiveOnly ||
		q.Status != StatusAny || strings.ContainsRune(q.Search, '\x1f') {
		return "", nil, false, nil
	}
	pat := "%" + escapeLike(q.Search) + "%"
	if s.trgm && len([]rune(q.Search)) >= MinIndexedSearch {
		est, err := memo.docEstimate(ctx, s, pat)
		if err != nil {
			return "", nil, false, err
		}
		if est <= s.searchPageMin {
			return "", nil, false, nil
		}
	}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	match := "doc LIKE lower(" + arg(pat) + `) ESCAPE '\'` // doc is lower-cased: as ILIKE, cheaper
	if lookup := nonEmpty(q.SearchLookup); len(lookup) > 0 {
		ps := make([]string, len(lookup))
		for i, tok := range lookup {
			ps[i] = arg(tok)
		}
		match += " OR id IN (" + s.lookupSessions(strings.Join(ps, ", ")) + ")"
	}
	where := "(" + match + ")"
	if q.After != "" {
		v, id, err := decodeCursor(q.After, col, q.Desc)
		if err != nil {
			return "", nil, false, fmt.Errorf("list sessions: %w", err)
		}
		where += " AND (login_time, id) " + cmp + " (" + arg(v) + ", " + arg(id) + ")"
		offset = 0
	}
	order := ` ORDER BY login_time` + dir + `, id` + dir
	ids := `SELECT id FROM session_search WHERE ` + where + order + ` LIMIT ` + strconv.Itoa(limit+1) + ` OFFSET ` + strconv.Itoa(offset)
	// ANY(ARRAY(…)): the page's ids first, then each session by its
	// primary key. As id IN (…), the planner hashed the ids and read every
	// session to join them (100k sessions: 40 of the query's 58 ms).
	return `SELECT ` + sessionCols + ` FROM sessions WHERE id = ANY(ARRAY(` + ids + `))` + order, args, true, nil
}

// logoutKeyset returns the conditions that select, among active sessions
// (no logout time, listed by id) and among ended ones, what comes after the
// cursor's row (logout time v, nil for an active session; id) in a list by
// logout time. Where the active sessions stand depends on how the database
// orders NULLs: SQLite first ascending and last descending, PostgreSQL the
// other way round; a cursor on one side of them selects all or none of the
// other group.
func (s *sqlStore) logoutKeyset(v any, id string, desc bool, cmp string, arg func(any) string) (active, ended string) {
	const all, none = "1 = 1", "1 = 0"
	nullsLast := (s.d.name() == "sqlite") == desc
	if v != nil {
		active = none
		if nullsLast {
			active = all
		}
		return active, "(logout_time, id) " + cmp + " (" + arg(v) + ", " + arg(id) + ")"
	}
	ended = all
	if nullsLast {
		ended = none
	}
	return "id " + cmp + " " + arg(id), ended
}

// fenceRows: up to this many expected matches, a PostgreSQL page reads
// the matches first and sorts them (see ListSessions).
const fenceRows = 2000

// countSessions fills page.Total (see ListSessions).
func (s *sqlStore) countSessions(ctx context.Context, q SessionQuery, page *SessionPage, offset int, more bool, memo *searchMemo) error {
	unfiltered := q.UserID == "" && q.Search == "" && q.Status == StatusAny
	switch {
	case unfiltered:
		c := "total"
		if q.ActiveOnly {
			c = "active"
		}
		if err := s.readRow(ctx, `SELECT COALESCE(SUM(`+c+`), 0) FROM session_counts`).Scan(&page.Total); err != nil {
			return s.wrap("count sessions", err)
		}
		page.Count = CountMaintained
		return nil
	case !more && q.After == "" && (offset == 0 || len(page.Sessions) > 0):
		page.Total, page.Count = offset+len(page.Sessions), CountExact
		return nil
	}
	if !q.ExactTotal && s.searchKnownCommon(ctx, q.Search, memo) {
		// The trigram index already found more candidates than the cap
		// (they are the LIKE matches: the index answers substrings).
		page.Total, page.Count, page.TotalCapped = CountCap, CountCapped, true
		return nil
	}
	where, args, _, err := s.sessionWhere(ctx, q, "", memo)
	if err != nil {
		return err
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	if q.ExactTotal {
		if err := s.readRow(ctx, `SELECT COUNT(*) FROM sessions`+cond, args...).Scan(&page.Total); err != nil {
			return s.wrap("count sessions", err)
		}
		page.Count = CountExact
		return nil
	}
	if s.d.name() == "postgres" {
		// The planner's estimate costs no scan; when it says the matches
		// are many, it is the answer (counting even to the cap would read
		// thousands of rows); when few, they are counted.
		est, err := s.estimateRows(ctx, `SELECT 1 FROM sessions`+cond, args)
		if err != nil {
			return err
		}
		// A substring search is estimated whatever the estimate: its
		// matches are spread over the table (counting even to the cap
		// reads a bitmap of every trigram match).
		if est > CountCap || q.Search != "" {
			page.Total, page.Count = max(est, offset+len(page.Sessions)+1), CountEstimated
			return nil
		}
	}
	var n int
	if err := s.readRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM sessions`+cond+` LIMIT `+strconv.Itoa(CountCap+1)+`) AS capped`, args...).Scan(&n); err != nil {
		return s.wrap("count sessions", err)
	}
	page.Total, page.Count = n, CountExact
	if n > CountCap {
		page.Total, page.Count, page.TotalCapped = CountCap, CountCapped, true
	}
	return nil
}

// sessionWhere renders q's filters as conditions. pageCol is the column
// the page is ordered by ("" when counting). activeSplit reports that the
// selection is not restricted to active or to ended sessions.
func (s *sqlStore) sessionWhere(ctx context.Context, q SessionQuery, pageCol string, memo *searchMemo) (where []string, args []any, activeSplit bool, err error) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// On SQLite, without planner statistics, a condition on an indexed
	// column can make the planner pick that index and sort every match;
	// "+col" keeps it walking the page's sort index instead (the page then
	// stops after limit rows). Counting has no order: any index helps. On
	// PostgreSQL too for last_active, whose statistics lag behind activity
	// (ListSessions counted the recent or idle matches: many).
	la, ended, reason := "last_active", "NOT active", "termination_reason"
	if pageCol != "" && pageCol != "last_active" {
		la = "+last_active" // both dialects: ListSessions counted the matches
	}
	if s.d.name() == "sqlite" && pageCol != "" {
		reason = "+termination_reason" // sessions_ended_reason is for counting
		if pageCol != "logout_time" && pageCol != "last_active" {
			ended = "NOT +active"
		}
	}
	if q.UserID != "" {
		where = append(where, "user_id = "+arg(q.UserID))
	}
	if q.ActiveOnly {
		where = append(where, "active")
	}
	idle := q.IdleBefore
	if idle.IsZero() {
		idle = time.Now().Add(-15 * time.Minute)
	}
	activeSplit = !q.ActiveOnly
	switch q.Status {
	case StatusAny:
	case StatusActive:
		where = append(where, "active AND "+la+" >= "+arg(ms(idle)))
		activeSplit = false
	case StatusIdle:
		where = append(where, "active AND "+la+" < "+arg(ms(idle)))
		activeSplit = false
	case StatusLoggedOut:
		where = append(where, ended+" AND "+reason+" = 'logout'")
		activeSplit = false
	case StatusTerminated:
		// Two ranges of sessions_ended_reason when counting (<> reads all).
		where = append(where, ended+" AND ("+reason+" < 'logout' OR "+reason+" > 'logout')")
		activeSplit = false
	default:
		return nil, nil, false, fmt.Errorf("list sessions: unknown status %q: %w", q.Status, ErrInvalid)
	}
	if q.Search != "" {
		conds, err := s.searchConds(ctx, q.Search, q.SearchLookup, arg, memo)
		if err != nil {
			return nil, nil, false, s.wrap("list sessions", err)
		}
		where = append(where, conds...)
	}
	return where, args, activeSplit, nil
}

// estimateRows returns PostgreSQL's estimate of the rows query returns.
func (s *sqlStore) estimateRows(ctx context.Context, query string, args []any) (int, error) {
	var plan string
	if err := s.r.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+query, args...).Scan(&plan); err != nil {
		return 0, s.wrap("estimate count", err)
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) == 0 {
		return 0, fmt.Errorf("estimate count: unexpected plan %.100q", plan)
	}
	return int(out[0].Plan.Rows), nil
}

// searchKnownCommon reports that the SQLite trigram index holds more than
// CountCap sessions matching term (false when unknown).
func (s *sqlStore) searchKnownCommon(ctx context.Context, term string, memo *searchMemo) bool {
	if term == "" || s.d.name() != "sqlite" {
		return false
	}
	if memo != nil && memo.trigramDone && memo.trigramCommon && SelectiveSearchLimit >= CountCap {
		return true // the page's candidates were more than SelectiveSearchLimit
	}
	m, ok := TrigramMatch(term)
	if !ok {
		return false
	}
	var n int
	err := s.readRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM sessions_search WHERE sessions_search MATCH $1 LIMIT `+
		strconv.Itoa(CountCap+1)+`)`, m).Scan(&n)
	return err == nil && n > CountCap
}

// searchConds returns the conditions of a substring search: LIKE over
// SearchColumns (the exact semantics), narrowed first by the trigram index
// of the dialect where the term allows it. lookup (keyed hashes of the term,
// SessionQuery.SearchLookup) also matches the sealed user names exactly, by
// session_lookup (migration 0070); the narrowing then adds those sessions
// to the trigram candidates.
func (s *sqlStore) searchConds(ctx context.Context, term string, lookup []string, arg func(any) string, memo *searchMemo) ([]string, error) {
	lookup = nonEmpty(lookup)
	byLookup := ""
	if len(lookup) > 0 {
		ps := make([]string, len(lookup))
		for i, tok := range lookup {
			ps[i] = arg(tok)
		}
		byLookup = s.lookupSessions(strings.Join(ps, ", "))
	}
	var out []string
	if s.d.name() == "sqlite" {
		ids, selective, err := memo.candidates(ctx, s, term)
		if err != nil {
			return nil, err
		}
		if selective {
			c := "SELECT value FROM json_each(" + arg(ids) + ")"
			if byLookup != "" {
				c += " UNION ALL " + byLookup
			}
			out = append(out, "rowid IN ("+c+")")
		}
	}
	p := arg("%" + escapeLike(term) + "%")
	like := s.d.like()
	if s.trgm && len([]rune(term)) >= MinIndexedSearch && !strings.ContainsRune(term, '\x1f') {
		// Candidates from the trigram index of session_search (lower-cased
		// text: ILIKE there matches what ILIKE matches per column), when
		// the planner expects few: a common term is found faster by
		// walking the page's sort index with the LIKE filter alone.
		pat := "%" + escapeLike(term) + "%"
		est, err := memo.docEstimate(ctx, s, pat)
		if err != nil {
			return nil, err
		}
		if est <= SelectiveSearchLimit {
			c := "SELECT id FROM session_search WHERE doc ILIKE " + p + ` ESCAPE '\'`
			if byLookup != "" {
				c += " UNION ALL " + byLookup
			}
			// The candidates are the matches: doc is the searched columns,
			// lower-cased and joined by \x1f, which the term does not hold,
			// so no match spans two columns. Without a per-column recheck:
			// on a small table PostgreSQL ran the six ILIKEs on every row
			// before joining the candidates (10k sessions: 20–27 ms).
			return append(out, "id IN ("+c+")"), nil
		}
	}
	var parts []string
	if s.d.name() == "sqlite" && !strings.ContainsRune(term, '\x1f') {
		// One LIKE on the joined columns (SearchDocSQLite), read from
		// sessions_login_time_id when the page walks it.
		parts = append(parts, SearchDocSQLite+" "+like+" "+p+` ESCAPE '\'`)
	} else {
		for _, c := range SearchColumns {
			parts = append(parts, c+" "+like+" "+p+` ESCAPE '\'`)
		}
	}
	if byLookup != "" {
		parts = append(parts, s.sessionKey()+" IN ("+byLookup+")")
	}
	return append(out, "("+strings.Join(parts, " OR ")+")"), nil
}

// lookupSessions is the query of the sessions (their sessionKey) whose user
// names have one of the lookup tokens in params (session_lookup).
func (s *sqlStore) lookupSessions(params string) string {
	if s.d.name() == "sqlite" {
		return "SELECT sid FROM session_lookup WHERE token IN (" + params + ")"
	}
	return "SELECT session_id FROM session_lookup WHERE token IN (" + params + ")"
}

// sessionKey is the column session_lookup refers to sessions by: the rowid
// on SQLite (as the trigram index), the id on PostgreSQL.
func (s *sqlStore) sessionKey() string {
	if s.d.name() == "sqlite" {
		return "rowid"
	}
	return "id"
}

// sortValue is the value of the sort column col of ss, as stored.
func sortValue(col string, ss *Session) any {
	switch col {
	case "login_time":
		return ms(ss.LoginTime)
	case "last_active":
		return ms(ss.LastActive)
	case "logout_time":
		if ss.LogoutTime == nil {
			return nil
		}
		return ms(*ss.LogoutTime)
	case "security_score":
		return int64(ss.SecurityScore)
	case "user_id":
		return ss.UserID
	case "ip":
		return ss.IP
	}
	return nil
}

// A cursor is base64url(JSON [column, desc, value, id]); it is only valid
// for the sort it was made for.
func encodeCursor(col string, desc bool, v any, id string) string {
	if v == nil && col != "logout_time" {
		return ""
	}
	b, _ := json.Marshal([]any{col, desc, v, id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c, col string, desc bool) (any, string, error) {
	if len(c) > 1024 {
		return nil, "", ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, "", ErrBadCursor
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var parts []any
	if err := dec.Decode(&parts); err != nil || len(parts) != 4 {
		return nil, "", ErrBadCursor
	}
	gotCol, _ := parts[0].(string)
	gotDesc, _ := parts[1].(bool)
	id, _ := parts[3].(string)
	if gotCol != col || gotDesc != desc || id == "" || len(id) > 200 {
		return nil, "", fmt.Errorf("%w: made for another sort", ErrBadCursor)
	}
	switch col {
	case "user_id", "ip":
		v, ok := parts[2].(string)
		if !ok || len(v) > 512 {
			return nil, "", ErrBadCursor
		}
		return v, id, nil
	default:
		if parts[2] == nil && col == "logout_time" {
			return nil, id, nil // an active session: no logout time
		}
		n, ok := parts[2].(json.Number)
		if !ok {
			return nil, "", ErrBadCursor
		}
		v, err := n.Int64()
		if err != nil {
			return nil, "", ErrBadCursor
		}
		return v, id, nil
	}
}

// ensureTrigram creates the pg_trgm extension (in schema public, so that
// per-schema deployments share it) and the trigram index of session_search
// (migration 0050; it must list the columns of SearchColumns), when the
// database allows. Without it, search falls back to ILIKE over the rows
// and a warning says so.
func (s *sqlStore) ensureTrigram(ctx context.Context) {
	if s.d.name() != "postgres" {
		return
	}
	err := func() error {
		var have bool
		if err := s.w.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')`).Scan(&have); err != nil {
			return err
		}
		if !have {
			if _, err := s.w.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public`); err != nil {
				return err
			}
		}
		var schema string
		if err := s.w.QueryRowContext(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`).Scan(&schema); err != nil {
			return err
		}
		return s.writeTx(ctx, "search index", func(tx *sql.Tx) error {
			if err := s.d.lockMigrations(ctx, tx); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS session_search_trgm ON session_search USING gin (doc `+
				quoteIdent(schema)+`.gin_trgm_ops)`)
			return err
		})
	}()
	if err != nil {
		s.log.Warn("pg_trgm is not available: admin search reads every session (install the extension to index it)", "err", err)
		return
	}
	s.trgm = true
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
