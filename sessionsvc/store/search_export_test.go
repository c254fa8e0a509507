package store

// WalkSearchTable makes every search page by login time on a PostgreSQL
// store st walk session_search (migration 0090), whatever the trigram index
// expects: the contract suite's tables are too small for a common term.
func WalkSearchTable(st Store) {
	st.(*sqlStore).searchPageMin = -1
}
