package host

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogEntry is one line the guest logged, by proxy_log or on stdout/stderr.
type LogEntry struct {
	Time    time.Time
	Worker  int
	Level   LogLevel
	Source  string // "proxy_log", "stdout" or "stderr"
	Message string
}

const (
	hostLogCapacity = 2000
	tailCapacity    = 30
)

// logBook keeps the last entries for Host.Logs and forwards to slog and the hook.
type logBook struct {
	logger *slog.Logger
	hook   func(LogEntry)

	mu      sync.Mutex
	entries []LogEntry
	start   int
}

func (b *logBook) add(e LogEntry) {
	if b.hook != nil {
		b.hook(e)
	}
	if b.logger != nil {
		b.logger.LogAttrs(context.Background(), slogLevel(e.Level), e.Message,
			slog.Int("worker", e.Worker), slog.String("source", e.Source))
	}
	b.mu.Lock()
	if len(b.entries) < hostLogCapacity {
		b.entries = append(b.entries, e)
	} else {
		b.entries[b.start] = e
		b.start = (b.start + 1) % hostLogCapacity
	}
	b.mu.Unlock()
}

func (b *logBook) all() []LogEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]LogEntry, 0, len(b.entries))
	out = append(out, b.entries[b.start:]...)
	return append(out, b.entries[:b.start]...)
}

func slogLevel(l LogLevel) slog.Level {
	switch l {
	case LogTrace, LogDebug:
		return slog.LevelDebug
	case LogInfo:
		return slog.LevelInfo
	case LogWarn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// tail is a worker's last guest lines, quoted in VM errors. It is only used
// under the worker's lock (guest output happens during guest calls).
type tail struct {
	lines []string
	start int
}

func (t *tail) add(line string) { t.addN(line, tailCapacity) }

func (t *tail) addN(line string, capacity int) {
	if len(t.lines) < capacity {
		t.lines = append(t.lines, line)
		return
	}
	t.lines[t.start] = line
	t.start = (t.start + 1) % capacity
}

func (t *tail) String() string {
	out := make([]string, 0, len(t.lines))
	out = append(out, t.lines[t.start:]...)
	out = append(out, t.lines[:t.start]...)
	return strings.Join(out, "\n")
}

// callOutput is the guest output of the current top-level call: its first
// and last lines, so a long panic trace keeps both its message and its end.
type callOutput struct {
	head    []string
	tail    tail
	dropped int
}

const headCapacity = 15

func (c *callOutput) reset() {
	c.head = c.head[:0]
	c.tail = tail{}
	c.dropped = 0
}

func (c *callOutput) add(line string) {
	if len(c.head) < headCapacity {
		c.head = append(c.head, line)
		return
	}
	if len(c.tail.lines) == tailCapacity/2 {
		c.dropped++
	}
	c.tail.addN(line, tailCapacity/2)
}

func (c *callOutput) String() string {
	out := strings.Join(c.head, "\n")
	if c.dropped > 0 {
		out += fmt.Sprintf("\n... (%d lines omitted) ...", c.dropped)
	}
	if t := c.tail.String(); t != "" {
		out += "\n" + t
	}
	return out
}

// lineWriter splits a guest's stdout or stderr into lines.
type lineWriter struct {
	w      *worker
	source string
	level  LogLevel
	buf    []byte
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			break
		}
		lw.w.guestLine(lw.level, lw.source, string(lw.buf[:i]))
		lw.buf = lw.buf[i+1:]
	}
	if len(lw.buf) > 64<<10 { // a very long line without newline
		lw.flush()
	}
	return len(p), nil
}

func (lw *lineWriter) flush() {
	if len(lw.buf) > 0 {
		lw.w.guestLine(lw.level, lw.source, string(lw.buf))
		lw.buf = lw.buf[:0]
	}
}
