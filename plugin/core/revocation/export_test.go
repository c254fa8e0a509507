package revocation

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Dump returns a canonical text form of the whole state (live and pending),
// for tests to compare states.
func (s *State) Dump() string {
	var lines []string
	dumpTable := func(name string, t *table) {
		if t == nil {
			return
		}
		for _, sl := range t.revoked.slots {
			if sl.h != 0 {
				lines = append(lines, fmt.Sprintf("%s revoked %016x %d %q", name, sl.h, sl.e.exp(), s.reason(sl.e.reason())))
			}
		}
		for _, sl := range t.blocked.slots {
			if sl.h != 0 {
				lines = append(lines, fmt.Sprintf("%s blocked %016x %d %q", name, sl.h, sl.e.exp(), s.reason(sl.e.reason())))
			}
		}
		for _, sl := range t.notBefore.slots {
			if sl.h != 0 {
				lines = append(lines, fmt.Sprintf("%s notbefore %016x %d %d", name, sl.h, sl.e.at, sl.e.exp))
			}
		}
	}
	dumpTable("live", s.cur)
	dumpTable("pending", s.pending)
	sort.Strings(lines)
	head := fmt.Sprintf("epoch=%q cursor=%d version=%d pending=%q/%d building=%v\n", s.epoch, s.cursor, s.version, s.pendingEpoch, s.pendingCursor, s.pending != nil)
	return head + strings.Join(lines, "\n")
}

var benchNow = time.Unix(1_800_000_000, 0)
