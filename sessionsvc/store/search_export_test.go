package store

import (
	"context"
	"fmt"
	"strings"
)

// WalkSearchTable makes every search page by login time on a PostgreSQL
// store st walk session_search (migration 0090), whatever the trigram index
// expects: the contract suite's tables are too small for a common term.
func WalkSearchTable(st Store) {
	st.(*sqlStore).searchPageMin = -1
}

// SearchPagePlan returns PostgreSQL's plan (EXPLAIN, one line per node) of
// the query of a search page by login time, newest first, on store st
// (after WalkSearchTable).
func SearchPagePlan(ctx context.Context, st Store, q SessionQuery) (string, error) {
	s := st.(*sqlStore)
	query, args, ok, err := s.searchPageByLoginTime(ctx, q, "login_time", " DESC", "<", 0, q.Limit, nil)
	if err != nil || !ok {
		return "", fmt.Errorf("no search page query (%v)", err)
	}
	rows, err := s.r.QueryContext(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		plan = append(plan, line)
	}
	return strings.Join(plan, "\n"), rows.Err()
}
