package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// MinIndexedSearch is the shortest search term the SQLite trigram index
// (migration 0002) can answer; shorter terms are matched by LIKE alone.
const MinIndexedSearch = 3

// SearchColumns are the session columns a search term is matched against
// (joined, SearchDocSQLite and session_search.doc).
var SearchColumns = []string{"user_id", "ip", "country", "browser_name", "os_name", "id"}

// SearchDocSQLite is the SearchColumns of a sessions row joined by char(31):
// the expression sessions_login_time_id carries (migration 0100), written
// as there, so that SQLite reads it from the index. A term without char(31)
// matches it (LIKE '%term%') exactly where it matches one of the columns.
const SearchDocSQLite = "(user_id || char(31) || ip || char(31) || country || char(31) || browser_name || char(31) || os_name || char(31) || id)"

// TrigramMatch returns the FTS5 MATCH expression for a substring search of
// term in any indexed column, and false when the term is too short for the
// trigram index.
func TrigramMatch(term string) (string, bool) {
	if len([]rune(term)) < MinIndexedSearch {
		return "", false
	}
	return `"` + strings.ReplaceAll(term, `"`, `""`) + `"`, true
}

// SQLiteSearchCandidates is the condition that narrows a SQLite query on
// sessions to the rows the trigram index finds for the MATCH parameter p.
func SQLiteSearchCandidates(p string) string {
	return "rowid IN (SELECT rowid FROM sessions_search WHERE sessions_search MATCH " + p + ")"
}

// SelectiveSearchLimit is how many index candidates a search may have for
// the index to be used: below it, reading the candidates and sorting them is
// fast; above it, the term is common and walking a sort index with LIKE
// fills a page after a few rows.
const SelectiveSearchLimit = 2000

// rowQuerier is what SearchIsSelective needs (*sql.DB, *sql.Tx).
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// trigramCandidates returns the rowids of the sessions the SQLite trigram
// index finds for term, as a JSON array, when they are at most
// SelectiveSearchLimit ("" and false when more, or when the term is too
// short for the index). Reading them once and handing them to the page
// query (json_each) spares a second evaluation of the MATCH, which for a
// term made of common trigrams (an ip address: digits and dots) is most of
// a search's cost. SQLite counts and lists them in one row: a row per
// candidate cost a common term (2,001 rows) ~1 ms in the driver.
func trigramCandidates(ctx context.Context, db *sql.DB, term string) (string, bool, error) {
	m, ok := TrigramMatch(term)
	if !ok {
		return "", false, nil
	}
	var (
		n   int
		ids string
	)
	err := db.QueryRowContext(ctx, `SELECT count(*), json_group_array(rowid) FROM (SELECT rowid FROM sessions_search WHERE sessions_search MATCH $1 LIMIT `+
		strconv.Itoa(SelectiveSearchLimit+1)+`)`, m).Scan(&n, &ids)
	if err != nil {
		return "", false, fmt.Errorf("search index: %w", err)
	}
	if n > SelectiveSearchLimit {
		return "", false, nil
	}
	return ids, true, nil
}

// SearchIsSelective reports whether the SQLite trigram index narrows term to
// at most SelectiveSearchLimit sessions.
func SearchIsSelective(ctx context.Context, db rowQuerier, term string) (bool, error) {
	m, ok := TrigramMatch(term)
	if !ok {
		return false, nil
	}
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM sessions_search WHERE sessions_search MATCH $1 LIMIT `+
		strconv.Itoa(SelectiveSearchLimit+1)+`)`, m).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("search index: %w", err)
	}
	return n <= SelectiveSearchLimit, nil
}

// searchMemo keeps, for one ListSessions, what the trigram indexes said of
// its search term: the page, its count and their plans ask it up to three
// times (a nil memo asks every time).
type searchMemo struct {
	trigramDone   bool   // SQLite: trigramCandidates ran
	trigramIDs    string // its candidates (a JSON array), when selective
	trigramSel    bool   // selective: at most SelectiveSearchLimit candidates
	trigramCommon bool   // more than SelectiveSearchLimit candidates
	estDone       bool   // PostgreSQL: the planner's estimate of the doc matches
	est           int
	estPat        string
}

// candidates is trigramCandidates(term), asked once.
func (m *searchMemo) candidates(ctx context.Context, s *sqlStore, term string) (string, bool, error) {
	if m != nil && m.trigramDone {
		return m.trigramIDs, m.trigramSel, nil
	}
	ids, selective, err := trigramCandidates(ctx, s.r, term)
	if err != nil || m == nil {
		return ids, selective, err
	}
	_, indexed := TrigramMatch(term)
	m.trigramDone, m.trigramIDs, m.trigramSel, m.trigramCommon = true, ids, selective, indexed && !selective
	return ids, selective, nil
}

// docEstimate is PostgreSQL's estimate of the session_search rows whose
// doc matches the ILIKE pattern pat, asked once.
func (m *searchMemo) docEstimate(ctx context.Context, s *sqlStore, pat string) (int, error) {
	if m != nil && m.estDone && m.estPat == pat {
		return m.est, nil
	}
	est, err := s.estimateRows(ctx, `SELECT id FROM session_search WHERE doc ILIKE $1 ESCAPE '\'`, []any{pat})
	if err != nil || m == nil {
		return est, err
	}
	m.estDone, m.est, m.estPat = true, est, pat
	return est, nil
}
