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
// (on SQLite, also the columns of sessions_login_time_id, migration 0090).
var SearchColumns = []string{"user_id", "ip", "country", "browser_name", "os_name", "id"}

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
// index finds for term, when they are at most SelectiveSearchLimit (nil and
// false when more, or when the term is too short for the index). Reading
// them once and handing them to the page query as a list spares a second
// evaluation of the MATCH, which for a term made of common trigrams (an ip
// address: digits and dots) is most of a search's cost.
func trigramCandidates(ctx context.Context, db *sql.DB, term string) ([]int64, bool, error) {
	m, ok := TrigramMatch(term)
	if !ok {
		return nil, false, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT rowid FROM sessions_search WHERE sessions_search MATCH $1 LIMIT `+
		strconv.Itoa(SelectiveSearchLimit+1), m)
	if err != nil {
		return nil, false, fmt.Errorf("search index: %w", err)
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, false, fmt.Errorf("search index: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("search index: %w", err)
	}
	if len(ids) > SelectiveSearchLimit {
		return nil, false, nil
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
