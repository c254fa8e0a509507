package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// feedSignal wakes the sync feed's long-poll waiters when the revocation
// log moves. Waiters hold the channel of the current generation; a change
// closes it (waking them all at once) and opens the next one. Waiting costs
// no database query: one refresher goroutine per store reads the log when
// poked (after a local commit on SQLite; on a NOTIFY from any replica on
// PostgreSQL), brings the in-memory feed up to date and only then wakes the
// waiters, who answer from that feed.
type feedSignal struct {
	ch    atomic.Pointer[chan struct{}]
	pokes chan struct{}
	live  atomic.Bool // waiting is supported right now (PostgreSQL: the listener is connected)
	stop  chan struct{}
	done  sync.WaitGroup
	fired atomic.Int64 // wake-ups, for tests and metrics

	// timers are the waiters' stopped timers, reused: a change re-arms
	// the whole fleet's waits.
	timers sync.Pool
}

// timer returns a timer that fires after d; putTimer gives it back.
func (f *feedSignal) timer(d time.Duration) *time.Timer {
	if t, ok := f.timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// putTimer stops t (since Go 1.23 a stopped timer's channel holds no
// stale tick) and keeps it for the next wait.
func (f *feedSignal) putTimer(t *time.Timer) {
	t.Stop()
	f.timers.Put(t)
}

func (f *feedSignal) init() {
	ch := make(chan struct{})
	f.ch.Store(&ch)
	f.pokes = make(chan struct{}, 1)
	f.stop = make(chan struct{})
}

// poke asks the refresher to look at the log (coalesced: many pokes while
// it is busy cost one look).
func (f *feedSignal) poke() {
	if f.pokes == nil {
		return
	}
	select {
	case f.pokes <- struct{}{}:
	default:
	}
}

// changed is closed at the next change after the call. Lock-free: every
// waiter a change wakes calls it again.
func (f *feedSignal) changed() <-chan struct{} {
	if ch := f.ch.Load(); ch != nil {
		return *ch
	}
	return nil // not started: never closed
}

// fire wakes the waiters. The next generation is in place before the
// current one is closed, so a waiter woken by it waits on the next.
func (f *feedSignal) fire() {
	next := make(chan struct{})
	close(*f.ch.Swap(&next))
	f.fired.Add(1)
}

func (f *feedSignal) close() {
	if f.stop == nil {
		return
	}
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.done.Wait()
}

// startSignal starts the refresher (and on PostgreSQL the listener).
func (s *sqlStore) startSignal(pgCfg *pgx.ConnConfig) {
	s.signal.init()
	s.signal.done.Add(1)
	go s.runRefresher()
	if pgCfg == nil {
		s.signal.live.Store(true)
		return
	}
	s.signal.done.Add(1)
	go s.runListener(pgCfg)
}

func (s *sqlStore) runRefresher() {
	defer s.signal.done.Done()
	// lastHead is the head the waiters were last woken for: a Changes call
	// may bring the feed forward before the refresher looks, so "moved"
	// is judged against what the waiters saw, not against the feed.
	lastHead := int64(-1)
	for {
		select {
		case <-s.signal.stop:
			return
		case <-s.signal.pokes:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		head, err := s.refreshFeed(ctx)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("sync feed refresh failed", "err", err)
			// Wake the waiters anyway: they fall back to reading the log.
			lastHead = -1
			s.signal.fire()
		case head != lastHead:
			lastHead = head
			s.signal.fire()
		}
	}
}

// refreshFeed brings the in-memory feed up to the log head and returns it.
func (s *sqlStore) refreshFeed(ctx context.Context) (int64, error) {
	tx, head, base, err := s.beginFeedRead(ctx)
	if err != nil {
		return 0, s.wrap("refresh feed", err)
	}
	defer func() { _ = tx.Rollback() }()
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	if err := s.feed.refresh(ctx, tx, head, base); err != nil {
		s.feed.built = false
		s.feed.invalidate()
		return 0, s.wrap("refresh feed", err)
	}
	return s.feed.head, nil
}

// beginFeedRead begins the read-only transaction a feed refresh reads the
// log in and reads the log head in it, after noting the feed's head (its
// base, see feedCache.refresh). The caller rolls tx back.
func (s *sqlStore) beginFeedRead(ctx context.Context) (tx *sql.Tx, head, base int64, err error) {
	s.feed.mu.Lock()
	base = s.feed.base()
	s.feed.mu.Unlock()
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.name() == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	if tx, err = s.r.BeginTx(ctx, opts); err != nil {
		return nil, 0, 0, err
	}
	if err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM revocation_log`).Scan(&head); err != nil {
		_ = tx.Rollback()
		return nil, 0, 0, fmt.Errorf("log head: %w", err)
	}
	return tx, head, base, nil
}

// notifyChannel names the PostgreSQL NOTIFY channel of the store's schema
// (replicas sharing a schema share it; other schemas are not disturbed).
const notifyChannelSQL = `'meshsession_' || md5(current_schema())`

// runListener LISTENs on the schema's channel on a dedicated connection
// and pokes the refresher on every notification. While it is not
// connected, long-poll requests answer at once (the plugin polls).
func (s *sqlStore) runListener(cfg *pgx.ConnConfig) {
	defer s.signal.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.signal.stop
		cancel()
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg)
		s.signal.live.Store(false)
		s.signal.poke() // waiters return; a missed notification is caught by the next look
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("sync feed listener lost; long-poll disabled until it reconnects", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *sqlStore) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		_ = conn.Close(cctx)
	}()
	var ch string
	if err := conn.QueryRow(ctx, `SELECT `+notifyChannelSQL).Scan(&ch); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
		return err
	}
	s.signal.live.Store(true)
	s.signal.poke() // anything appended while we were not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.signal.poke()
	}
}

// WaitChanges is Changes with a long-poll: when nothing follows cursor it
// waits up to wait for the log to move (any replica's append), then
// answers from the in-memory feed. Waiting costs no database query. With
// wait <= 0, or while waiting is unavailable (PostgreSQL listener down),
// it is Changes.
func (s *sqlStore) WaitChanges(ctx context.Context, epoch string, cursor int64, limit int, wait time.Duration, now func() time.Time) (protocol.SyncPage, error) {
	changed := s.signal.changed() // taken before the read: a later commit closes it
	// While the signal is live the in-memory feed is at most one refresh
	// behind the log, and that refresh closes changed: a delta can be
	// answered from memory, so a proxy's poll right after its answer (the
	// whole fleet's, after every change) costs no database query either.
	var page protocol.SyncPage
	var err error
	cached := false
	if wait > 0 && s.signal.live.Load() {
		page, cached = s.cachedChanges(epoch, cursor, limit, now())
	}
	if !cached {
		page, err = s.Changes(ctx, epoch, cursor, limit, now())
	}
	// Wait only when there is nothing to hand out: an empty delta, or the
	// empty snapshot of an empty log at this epoch (cursor 0, a fresh
	// install), which a change turns into a one-entry snapshot.
	emptyLog := page.Reset && epoch == s.epoch && page.Cursor == 0
	if err != nil || wait <= 0 || len(page.Changes) > 0 || page.More || (page.Reset && !emptyLog) || !s.signal.live.Load() {
		return page, err
	}
	t := s.signal.timer(wait)
	defer s.signal.putTimer(t)
	for {
		select {
		case <-changed:
		case <-t.C:
			page.Now = now().Unix()
			return page, nil
		case <-ctx.Done():
			page.Now = now().Unix()
			return page, nil
		}
		changed = s.signal.changed()
		if emptyLog {
			p, err := s.Changes(ctx, epoch, cursor, limit, now())
			if err != nil || len(p.Changes) > 0 || p.Cursor != 0 {
				return p, err
			}
			continue
		}
		p, ok := s.cachedChanges(epoch, cursor, limit, now())
		if !ok || !s.signal.live.Load() {
			return s.Changes(ctx, epoch, cursor, limit, now())
		}
		if len(p.Changes) > 0 {
			return p, nil
		}
	}
}

// cachedChanges answers a delta from the in-memory feed alone; false when
// it cannot (feed not built, other epoch, cursor older than the tail).
// The page is built once per feed version, cursor and limit and shared by
// every caller asking for it (a change wakes the whole fleet at one
// cursor): its Changes must not be modified.
func (s *sqlStore) cachedChanges(epoch string, cursor int64, limit int, now time.Time) (protocol.SyncPage, bool) {
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, MaxChangesLimit)
	if cursor <= 0 || epoch != s.epoch || s.inSeqGap(cursor) {
		return protocol.SyncPage{}, false // a snapshot (a gap: see logseq.go)
	}
	if page, ok := s.feed.sharedPage(cursor, limit); ok {
		page.Now = now.Unix()
		return page, true
	}
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	if !s.feed.built || cursor > s.feed.head {
		// Past the head this replica knows: the log may have gone back (a
		// restore, which Changes answers with a snapshot), or another
		// replica is ahead of this one's feed; the database decides.
		return protocol.SyncPage{}, false
	}
	got, ok := s.feed.delta(cursor, limit)
	if !ok {
		return protocol.SyncPage{}, false
	}
	page := protocol.SyncPage{Epoch: s.epoch, Cursor: cursor, Changes: got}
	if page.Changes == nil {
		page.Changes = []protocol.Change{}
	}
	if len(page.Changes) > limit {
		page.Changes = page.Changes[:limit]
		page.More = true
	}
	if n := len(page.Changes); n > 0 {
		page.Cursor = page.Changes[n-1].Seq
	}
	s.feed.share(cursor, limit, page)
	page.Now = now.Unix()
	return page, true
}

// FeedWakeups reports how many times the feed's waiters were woken.
func (s *sqlStore) FeedWakeups() int64 { return s.signal.fired.Load() }

// LongPollReady reports whether WaitChanges can wait right now (on
// PostgreSQL: the listener is connected).
func (s *sqlStore) LongPollReady() bool { return s.signal.live.Load() }
