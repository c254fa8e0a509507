// Package throttle decides when a session's activity (last-seen) is
// reported, so that each session is reported at most once per
// last_seen_interval across all workers, and batches the reports into one
// /internal/v1/activity body per tick.
//
// The glue keeps one mark per session in proxy-wasm shared data under
// MarkKey(sessionKey), an 8-byte big-endian Unix-millisecond time written
// with CAS: a worker reports only if it wins the CAS that moves the mark.
package throttle

import (
	"encoding/binary"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// MarkPrefix prefixes the shared-data key of a session's mark.
const MarkPrefix = "ms:seen:"

// MarkLen is the size of an encoded mark.
const MarkLen = 8

// MarkKey returns the shared-data key of a session's mark.
func MarkKey(sessionKey string) string { return MarkPrefix + sessionKey }

// AppendMarkKey appends the shared-data key of a session's mark to dst.
func AppendMarkKey(dst []byte, sessionKey string) []byte {
	return append(append(dst, MarkPrefix...), sessionKey...)
}

// EncodeMark encodes t (Unix milliseconds) as 8 bytes big-endian.
func EncodeMark(dst *[MarkLen]byte, unixMilli int64) []byte {
	binary.BigEndian.PutUint64(dst[:], uint64(unixMilli))
	return dst[:]
}

// ErrBadMark: the stored mark is not 8 bytes.
var ErrBadMark = errors.New("throttle: mark is not 8 bytes")

// DecodeMark decodes a mark. An empty value (absent, or blanked by pruning)
// is the zero time with ok false; any other length is an error.
func DecodeMark(b []byte) (unixMilli int64, ok bool, err error) {
	switch len(b) {
	case 0:
		return 0, false, nil
	case MarkLen:
		return int64(binary.BigEndian.Uint64(b)), true, nil
	}
	return 0, false, ErrBadMark
}

// Due reports whether a session whose last mark is lastMilli (0 = never)
// should be reported at nowMilli given interval. A mark in the future (clock
// step back) more than one interval ahead counts as due, so a broken mark
// cannot silence a session forever.
func Due(lastMilli, nowMilli int64, interval time.Duration) bool {
	if lastMilli <= 0 {
		return true
	}
	iv := interval.Milliseconds()
	d := nowMilli - lastMilli
	return d >= iv || d < -iv
}

// Batch coalesces activity per session key until flushed. It keeps the
// latest mark of each session and at most Max sessions; Add reports false
// when the batch is full (the caller should flush first).
type Batch struct {
	Max   int
	items map[string]protocol.Activity
}

// DefaultBatchMax bounds a batch (one activity call per tick).
const DefaultBatchMax = 1000

// NewBatch returns an empty batch holding at most max sessions
// (DefaultBatchMax when max <= 0).
func NewBatch(max int) *Batch {
	if max <= 0 {
		max = DefaultBatchMax
	}
	return &Batch{Max: max, items: make(map[string]protocol.Activity)}
}

// Add records activity a (a.Key is the session key; a.At Unix ms). Strings
// are kept as given: pass detached (copied) strings.
func (b *Batch) Add(a protocol.Activity) bool {
	if old, ok := b.items[a.Key]; ok {
		if a.At >= old.At {
			if a.User == "" {
				a.User = old.User
			}
			if a.IP == "" {
				a.IP = old.IP
			}
			if len(a.Keys) == 0 {
				a.Keys, a.UserAgent, a.Exp = old.Keys, old.UserAgent, old.Exp
			}
			b.items[a.Key] = a
		}
		return true
	}
	if len(b.items) >= b.Max {
		return false
	}
	b.items[a.Key] = a
	return true
}

// Len is the number of sessions in the batch.
func (b *Batch) Len() int { return len(b.items) }

// Flush returns the JSON body ([]protocol.Activity, sorted by key) and
// empties the batch; nil when the batch is empty.
func (b *Batch) Flush() []byte {
	if len(b.items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(b.items))
	for k := range b.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]byte, 0, 96*len(keys))
	out = append(out, '[')
	for i, k := range keys {
		a := b.items[k]
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"key":`...)
		out = gjson.AppendJSONString(out, a.Key)
		if a.User != "" {
			out = append(out, `,"user":`...)
			out = gjson.AppendJSONString(out, a.User)
		}
		out = append(out, `,"at":`...)
		out = strconv.AppendInt(out, a.At, 10)
		if a.IP != "" {
			out = append(out, `,"ip":`...)
			out = gjson.AppendJSONString(out, a.IP)
		}
		if len(a.Keys) > 0 {
			out = append(out, `,"keys":[`...)
			for j, k := range a.Keys {
				if j > 0 {
					out = append(out, ',')
				}
				out = gjson.AppendJSONString(out, k)
			}
			out = append(out, ']')
		}
		if a.UserAgent != "" {
			out = append(out, `,"userAgent":`...)
			out = gjson.AppendJSONString(out, a.UserAgent)
		}
		if a.Exp != 0 {
			out = append(out, `,"exp":`...)
			out = strconv.AppendInt(out, a.Exp, 10)
		}
		out = append(out, '}')
	}
	out = append(out, ']')
	clear(b.items)
	return out
}

// Tracker remembers, per worker, which marks this worker wrote and when, so
// that stale marks can be blanked in shared data (proxy-wasm has no delete
// and no key listing). It is bounded by Max entries.
type Tracker struct {
	Max   int
	marks map[string]int64
}

// NewTracker returns a Tracker holding at most max keys (100000 when <= 0).
func NewTracker(max int) *Tracker {
	if max <= 0 {
		max = 100000
	}
	return &Tracker{Max: max, marks: make(map[string]int64)}
}

// Wrote records that this worker wrote the mark of sessionKey at nowMilli.
// It reports false when the tracker is full (the mark is then not tracked;
// Prune still frees room later).
func (t *Tracker) Wrote(sessionKey string, nowMilli int64) bool {
	if _, ok := t.marks[sessionKey]; !ok && len(t.marks) >= t.Max {
		return false
	}
	t.marks[sessionKey] = nowMilli
	return true
}

// Len is the number of tracked marks.
func (t *Tracker) Len() int { return len(t.marks) }

// Prune forgets marks older than maxAge and returns their session keys, for
// the glue to blank MarkKey(k) in shared data (writing an empty value,
// unconditionally or with the CAS it read).
func (t *Tracker) Prune(nowMilli int64, maxAge time.Duration) []string {
	var out []string
	limit := nowMilli - maxAge.Milliseconds()
	for k, at := range t.marks {
		if at < limit {
			out = append(out, k)
			delete(t.marks, k)
		}
	}
	sort.Strings(out)
	return out
}
