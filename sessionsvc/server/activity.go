package server

import (
	"context"
	"sync"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// activityBuffer coalesces activity marks in memory (latest mark per key)
// and writes them in batches: a busy mesh reports the same sessions over
// and over, and the database only needs the latest mark of each. Marks are
// never invented and lastActive only moves forward (the store checks it);
// a crash loses at most one flush interval of last-seen updates, which
// the design allows.
type activityBuffer struct {
	st         store.Sessions
	maxPending int

	mu      sync.Mutex
	pending map[string]int64 // key -> latest mark, Unix ms

	flushMu sync.Mutex // one flush at a time
}

func newActivityBuffer(st store.Sessions, maxPending int) *activityBuffer {
	return &activityBuffer{st: st, maxPending: maxPending, pending: make(map[string]int64)}
}

// add queues marks and reports how many keys moved forward in the buffer,
// and whether the buffer is full (the caller should flush).
func (b *activityBuffer) add(marks []store.ActivityMark) (moved int, full bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range marks {
		at := m.At.UnixMilli()
		if old, ok := b.pending[m.Key]; !ok || at > old {
			b.pending[m.Key] = at
			moved++
		}
	}
	return moved, len(b.pending) >= b.maxPending
}

func (b *activityBuffer) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// flush writes everything pending. On failure the marks go back into the
// buffer (newer marks that arrived meanwhile win) to be retried.
func (b *activityBuffer) flush(ctx context.Context) (int, error) {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batch := b.pending
	b.pending = make(map[string]int64, len(batch))
	b.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	marks := make([]store.ActivityMark, 0, len(batch))
	for k, at := range batch {
		marks = append(marks, store.ActivityMark{Key: k, At: time.UnixMilli(at).UTC()})
	}
	n, err := b.st.RecordActivity(ctx, marks)
	if err != nil {
		b.mu.Lock()
		for k, at := range batch {
			if old, ok := b.pending[k]; !ok || at > old {
				b.pending[k] = at
			}
		}
		b.mu.Unlock()
		return 0, err
	}
	return n, nil
}

// FlushActivity writes the buffered activity marks now (no-op in
// write-through mode).
func (s *Server) FlushActivity(ctx context.Context) error {
	if s.activityBuf == nil {
		return nil
	}
	n, err := s.activityBuf.flush(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Debug("activity flushed", "sessions", n)
	}
	return nil
}

// RunActivityFlusher flushes buffered activity every
// Config.ActivityFlushInterval until ctx ends, then once more (with its own
// deadline) so that a graceful shutdown loses nothing. It returns at once
// in write-through mode.
func (s *Server) RunActivityFlusher(ctx context.Context) {
	if s.activityBuf == nil {
		return
	}
	t := time.NewTicker(s.cfg.ActivityFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.FlushActivity(fctx); err != nil {
				s.log.Error("final activity flush failed", "pending", s.activityBuf.size(), "err", err)
			}
			return
		case <-t.C:
			if err := s.FlushActivity(ctx); err != nil {
				s.log.Warn("activity flush failed; will retry", "pending", s.activityBuf.size(), "err", err)
			}
		}
	}
}
