package store

import (
	"context"
	"sync"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// revokeGroup commits concurrent revocations of keys together (group
// commit). Appends to the revocation log are serialised (see logTx):
// on PostgreSQL every such transaction holds the log lock through its
// commit, WAL flush included, so four clients revoking keys one call after
// the other queue for one flush each. Grouped, a caller that finds a
// transaction in progress waits for it to end and then goes, with every
// revocation that arrived meanwhile, in the next one. Each caller returns
// only once its own revocations are committed (or with the error that
// failed their transaction).
//
// Callers that come back at once (clients revoking in a loop) would
// otherwise split into alternate groups: the first to come back finds no
// transaction in progress and writes alone, the others queue behind it,
// and every group pays a commit (a WAL flush on PostgreSQL) for half the
// callers. So a leader first waits for as many callers as took part in
// the last round (that group and those queued behind it), but no longer
// than that group's transaction took: at worst a caller's wait doubles,
// while under load the commits halve. A caller that comes when the last
// round is longer ago than that (a lone revocation) does not wait.
type revokeGroup struct {
	mu      sync.Mutex
	busy    bool          // a leader is writing
	pending []*revokeCall // waiting for the next transaction
	next    *revokeCall   // handed the lead, not yet leading

	want  int           // callers in the last round
	took  time.Duration // the last group's transaction
	ended time.Time     // when it ended
	ready chan struct{} // closed when len(pending) reaches want, while a leader gathers
}

// maxGather bounds a leader's wait for callers.
const maxGather = 5 * time.Millisecond

type revokeCall struct {
	changes []protocol.Change
	now     time.Time
	// done receives the outcome, or nil on lead: the caller is to write
	// the next group itself.
	done chan *error
}

// revokeGrouped appends changes to the revocation log, in a transaction
// shared with concurrent callers. A caller whose ctx ends while it waits
// returns ctx.Err(); its changes may still be committed with the group.
func (s *sqlStore) revokeGrouped(ctx context.Context, op string, changes []protocol.Change, now time.Time) error {
	g := &s.revokes
	me := &revokeCall{changes: changes, now: now, done: make(chan *error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, me)
	if g.ready != nil && len(g.pending) >= g.want {
		close(g.ready)
		g.ready = nil
	}
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return s.leadRevokeGroup(ctx, op, me)
	}
	g.mu.Unlock()
	select {
	case res := <-me.done:
		if res != nil {
			return *res
		}
		return s.leadRevokeGroup(ctx, op, me)
	case <-ctx.Done():
		g.mu.Lock()
		if g.next == me {
			// Handed the lead: others wait for it.
			g.mu.Unlock()
			<-me.done
			return s.leadRevokeGroup(ctx, op, me)
		}
		for i, c := range g.pending {
			if c == me {
				g.pending = append(g.pending[:i:i], g.pending[i+1:]...)
				break
			}
		}
		g.mu.Unlock()
		return ctx.Err()
	}
}

// leadRevokeGroup writes every pending call (me among them) in one
// transaction, tells each its outcome, and hands the lead to the first
// call that arrived meanwhile, if any.
func (s *sqlStore) leadRevokeGroup(ctx context.Context, op string, me *revokeCall) error {
	g := &s.revokes
	g.gather()
	g.mu.Lock()
	group := g.pending
	g.pending, g.next = nil, nil
	g.mu.Unlock()
	var all []protocol.Change
	now := me.now
	for _, c := range group {
		all = append(all, c.changes...)
		if c.now.After(now) {
			now = c.now
		}
	}
	// Others wait on this transaction: it is not abandoned when this
	// caller's request is.
	wctx := context.WithoutCancel(ctx)
	start := time.Now()
	err := s.appendAlone(wctx, prioRevoke, op, now, all)
	ended := time.Now()
	took := ended.Sub(start)
	for _, c := range group {
		if c != me {
			c.done <- &err
		}
	}
	g.mu.Lock()
	g.want, g.took, g.ended = len(group)+len(g.pending), took, ended
	if len(g.pending) > 0 {
		g.next = g.pending[0]
		g.next.done <- nil // lead
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return err
}

// gather waits, before a leader takes the pending calls, until as many
// are pending as took part in the last round, for at most as long as the
// last group's transaction took (see revokeGroup).
func (g *revokeGroup) gather() {
	g.mu.Lock()
	wait := min(g.took, maxGather)
	if len(g.pending) >= g.want || time.Since(g.ended) > wait {
		g.mu.Unlock()
		return
	}
	ready := make(chan struct{})
	g.ready = ready
	g.mu.Unlock()
	t := time.NewTimer(wait)
	select {
	case <-ready:
	case <-t.C:
	}
	t.Stop()
	g.mu.Lock()
	if g.ready == ready {
		g.ready = nil
	}
	g.mu.Unlock()
}
