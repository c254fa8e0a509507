package store

import (
	"context"
	"sync"
)

// priority orders writers waiting for SQLite's single write connection.
type priority int

const (
	// prioMerge: the activity merger (MergeActivity). It yields to every
	// other writer, activity flushes included, after each statement.
	prioMerge priority = iota
	// prioBulk: activity flushes, idle/expiry sweeps, purge, compaction.
	// They write in short transactions and yield between them.
	prioBulk
	// prioNormal: logins, refreshes, settings, alerts.
	prioNormal
	// prioRevoke: anything the proxies must learn about (terminations,
	// logouts, blocks, not-before, revocations of unknown keys).
	prioRevoke
	numPriorities
)

// writeGate hands SQLite's one write connection to the most urgent waiter:
// when a write transaction ends, a waiting revocation goes first, then a
// waiting login, then bulk work, then the activity merger; within a priority, first come first
// served. database/sql's own wait queue for a busy connection has no order
// at all, so without the gate a revocation could wait behind any number of
// activity batches. A revocation waits at most for the transaction in
// progress, which bulk writers keep short.
//
// PostgreSQL needs no gate (many connections, row locks); its bulk writers
// use short transactions for the same reason.
type writeGate struct {
	mu      sync.Mutex
	held    bool
	waiters [numPriorities][]chan struct{}
}

// acquire waits for the gate. On success the caller must call release.
func (g *writeGate) acquire(ctx context.Context, p priority) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.waiters[p] = append(g.waiters[p], ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		q := g.waiters[p]
		for i, c := range q {
			if c == ch {
				g.waiters[p] = append(q[:i:i], q[i+1:]...)
				g.mu.Unlock()
				return ctx.Err()
			}
		}
		g.mu.Unlock()
		// Handed over just as we gave up: pass it on.
		<-ch
		g.release()
		return ctx.Err()
	}
}

// release hands the gate to the most urgent waiter, or frees it.
func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := numPriorities - 1; p >= 0; p-- {
		if q := g.waiters[p]; len(q) > 0 {
			ch := q[0]
			q[0] = nil
			g.waiters[p] = q[1:]
			close(ch)
			return
		}
	}
	g.held = false
}

// waiting reports how many writers of priority at least p are waiting.
func (g *writeGate) waiting(p priority) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for ; p < numPriorities; p++ {
		n += len(g.waiters[p])
	}
	return n
}
