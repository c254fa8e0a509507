package store

import (
	"context"
	"database/sql"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// feedCache keeps the sync feed in memory so that the many plugin VMs
// polling it cost no database scan: the live set (what a snapshot
// returns) and the recent tail of the log (what deltas return). It is
// brought up to date from the log on every call (entries after the cached
// head), so it also follows what other replicas append on PostgreSQL.
//
// It stays correct under compaction: compaction only deletes entries that
// are superseded (already tombstoned here) or expired (filtered out by
// their exp when served), and a delta served from the tail may still hold
// entries the database has dropped, which clients handle like any other.
type feedCache struct {
	mu    sync.Mutex
	built bool
	head  int64 // every entry with seq <= head has been applied

	live      []protocol.Change // live entries in seq order; Seq == 0 marks a tombstone
	bySubject map[string]int    // subject -> index in live
	tombs     int

	tail      []protocol.Change // every entry with seq > tailAfter, in order
	tailAfter int64

	maxTail int // 0: feedMaxTail (tests set less)

	// version moves (under mu) whenever what a delta would answer may
	// change: entries applied, the tail trimmed, the feed dropped or
	// rebuilt. shared holds the last delta pages built, valid while
	// version has not moved: the waiters a change wakes at one cursor
	// share one (several slots: while a change fans out, the woken ask at
	// the old cursor and the answered at the new one).
	version    atomic.Uint64
	shared     [4]atomic.Pointer[sharedDelta]
	sharedNext atomic.Uint32
}

// sharedDelta is a delta page built once and handed to every caller at
// the same cursor and limit while the feed's version stands. Its changes
// are never modified.
type sharedDelta struct {
	version uint64
	cursor  int64
	limit   int
	page    protocol.SyncPage // Now unset: each answer sets its own
}

// sharedPage finds the page built at cursor and limit for the current
// version.
func (f *feedCache) sharedPage(cursor int64, limit int) (protocol.SyncPage, bool) {
	v := f.version.Load()
	for i := range f.shared {
		if sh := f.shared[i].Load(); sh != nil && sh.cursor == cursor && sh.limit == limit && sh.version == v {
			return sh.page, true
		}
	}
	return protocol.SyncPage{}, false
}

// share keeps page for the callers that ask at cursor and limit until the
// version moves; under mu.
func (f *feedCache) share(cursor int64, limit int, page protocol.SyncPage) {
	i := f.sharedNext.Add(1) % uint32(len(f.shared))
	f.shared[i].Store(&sharedDelta{version: f.version.Load(), cursor: cursor, limit: limit, page: page})
}

// invalidate marks the answers built so far as stale; under mu.
func (f *feedCache) invalidate() { f.version.Add(1) }

const (
	feedMaxTail    = 200_000 // entries kept for deltas
	feedMaxCatchUp = 500_000 // more new entries than this: rebuild instead
)

func isLiveOp(op string) bool {
	return op == protocol.OpRevoke || op == protocol.OpBlock || op == protocol.OpNotBefore
}

// isLift tells an explicit lift (unrevoke, unblock). A snapshot lists the
// latest lift of each subject too: the plugin keeps what it had seen when
// a snapshot merely lacks it (a store reset or restore, see the plugin's
// revocation/keep.go), so a lift must be told from "absent".
func isLift(op string) bool {
	return op == protocol.OpUnrevoke || op == protocol.OpUnblock
}

// inSnapshot tells the entries a snapshot lists.
func inSnapshot(op string) bool { return isLiveOp(op) || isLift(op) }

func scanChanges(rows *sql.Rows, out []protocol.Change) ([]protocol.Change, error) {
	defer rows.Close()
	for rows.Next() {
		var c protocol.Change
		if err := rows.Scan(&c.Seq, &c.Op, &c.Key, &c.User, &c.Exp, &c.At, &c.Reason); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// noBase is the base of a read that began while the feed was not built.
const noBase = -1

// base is what a read must record (under mu) before its transaction takes
// its snapshot, and hand to refresh: see there.
func (f *feedCache) base() int64 {
	if !f.built {
		return noBase
	}
	return f.head
}

// refresh applies the log up to head (read in the caller's transaction).
// base is the feed's head when the caller began reading (feedCache.base):
// the caller's snapshot was taken after the feed reached base, so it holds
// every entry up to base unless the log really went back (restored from a
// backup under a running service: compaction keeps the head entry, see
// Compact). A head below the feed's that is not below base is only a
// snapshot older than a concurrent reader's, which brought the feed
// further meanwhile: the feed never steps back for it (it would then
// answer waiters from a past that no refresh would correct, until the
// next change), and the caller reads on from the newer feed.
func (f *feedCache) refresh(ctx context.Context, tx *sql.Tx, head, base int64) error {
	if f.built && head < f.head && head < base {
		f.built = false // the log went back
	}
	var news []protocol.Change
	if f.built && head > f.head {
		// Seqs are not dense (they follow the clock, see logseq.go): how
		// far behind the feed is shows only in the entries read. Far
		// behind (more than feedMaxCatchUp), it is rebuilt instead.
		rows, err := tx.QueryContext(ctx, `SELECT seq, op, key, user_id, exp, at, reason FROM revocation_log
			WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`, f.head, head, feedMaxCatchUp+1)
		if err != nil {
			return err
		}
		if news, err = scanChanges(rows, nil); err != nil {
			return err
		}
		if len(news) > feedMaxCatchUp {
			f.built, news = false, nil
		}
	}
	if !f.built {
		f.invalidate()
		rows, err := tx.QueryContext(ctx, `SELECT seq, op, key, user_id, exp, at, reason FROM revocation_log
			WHERE latest AND op IN ('revoke', 'block', 'not_before') AND seq <= $1 ORDER BY seq`, head)
		if err != nil {
			return err
		}
		live, err := scanChanges(rows, nil)
		if err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT seq, op, key, user_id, exp, at, reason FROM revocation_log
			WHERE latest AND op IN ('unrevoke', 'unblock') AND seq <= $1 ORDER BY seq`, head)
		if err != nil {
			return err
		}
		n := len(live)
		if live, err = scanChanges(rows, live); err != nil {
			return err
		}
		if len(live) > n {
			sort.Slice(live, func(i, j int) bool { return live[i].Seq < live[j].Seq })
		}
		f.live, f.tombs = live, 0
		f.bySubject = make(map[string]int, len(live))
		for i, c := range live {
			f.bySubject[subjectOf(c)] = i
		}
		f.tail, f.tailAfter, f.head, f.built = nil, head, head, true
		return nil
	}
	if head <= f.head {
		return nil // nothing new (the head can even drop when compaction removes the last entry)
	}
	f.invalidate()
	for _, c := range news {
		subj := subjectOf(c)
		if i, ok := f.bySubject[subj]; ok {
			f.live[i].Seq = 0
			f.tombs++
			delete(f.bySubject, subj)
		}
		if inSnapshot(c.Op) {
			f.bySubject[subj] = len(f.live)
			f.live = append(f.live, c)
		}
	}
	f.tail = append(f.tail, news...)
	f.head = head
	// Trim in steps of a quarter so the copy is amortised.
	maxTail := f.maxTail
	if maxTail <= 0 {
		maxTail = feedMaxTail
	}
	if n := len(f.tail) - maxTail; n > maxTail/4 {
		f.tailAfter = f.tail[n-1].Seq
		f.tail = append([]protocol.Change(nil), f.tail[n:]...)
	}
	if f.tombs > 1024 && f.tombs > len(f.live)/2 {
		f.compactLive()
	}
	return nil
}

func (f *feedCache) compactLive() {
	kept := f.live[:0]
	for _, c := range f.live {
		if c.Seq != 0 {
			kept = append(kept, c)
		}
	}
	clear(f.live[len(kept):])
	f.live = kept
	f.tombs = 0
	for i, c := range f.live {
		f.bySubject[subjectOf(c)] = i
	}
}

// snapshot returns up to limit+1 live, unexpired entries.
func (f *feedCache) snapshot(limit int, nowUnix int64) []protocol.Change {
	out := make([]protocol.Change, 0, min(limit+1, len(f.live)))
	for _, c := range f.live {
		if c.Seq == 0 || (c.Exp != 0 && c.Exp <= nowUnix) {
			continue
		}
		out = append(out, c)
		if len(out) > limit {
			break
		}
	}
	return out
}

// delta returns up to limit+1 entries after cursor, and false when the
// tail does not reach back to cursor.
func (f *feedCache) delta(cursor int64, limit int) ([]protocol.Change, bool) {
	if cursor < f.tailAfter {
		return nil, false
	}
	i := sort.Search(len(f.tail), func(i int) bool { return f.tail[i].Seq > cursor })
	end := min(len(f.tail), i+limit+1)
	return append([]protocol.Change(nil), f.tail[i:end]...), true
}
