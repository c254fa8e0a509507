package store

import (
	"context"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// BeginDelayedChanges starts a Changes call on st up to its snapshot (the
// log head read) and returns the rest of it: what a Changes call does when
// the scheduler stalls it between its head query and the feed lock while
// other readers go on (a loaded machine).
func BeginDelayedChanges(ctx context.Context, st Store) (finish func(epoch string, cursor int64, limit int, now time.Time) (protocol.SyncPage, error), err error) {
	s := st.(*sqlStore)
	tx, head, base, err := s.beginFeedRead(ctx)
	if err != nil {
		return nil, err
	}
	return func(epoch string, cursor int64, limit int, now time.Time) (protocol.SyncPage, error) {
		defer func() { _ = tx.Rollback() }()
		return s.changesIn(ctx, tx, head, base, epoch, cursor, limit, now)
	}, nil
}

// KeysOf lists the keys of a page's changes.
func KeysOf(p protocol.SyncPage) []string {
	var keys []string
	for _, c := range p.Changes {
		keys = append(keys, c.Key)
	}
	return keys
}
