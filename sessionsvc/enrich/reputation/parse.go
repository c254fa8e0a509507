package reputation

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// BadLine is a line that could not be read.
type BadLine struct {
	Line int
	Text string // truncated to 80 bytes
	Err  string
}

// ParseReport says what a list held.
type ParseReport struct {
	Entries   int       // addresses, prefixes and ranges added
	Malformed int       // lines that were not understood
	Bad       []BadLine // the first MaxBadLines malformed lines
}

// MaxBadLines is how many malformed lines a ParseReport keeps.
const MaxBadLines = 20

// maxLineLen bounds one line; longer lines are malformed.
const maxLineLen = 4096

// Parse reads a list: one entry a line, an address ("192.0.2.1",
// "2001:db8::1"), a prefix ("198.51.100.0/24", "2001:db8::/32") or a range
// ("192.0.2.10-192.0.2.20"). "#" starts a comment; blank lines are ignored.
// The Tor Project's exit-addresses format ("ExitAddress 192.0.2.1 <date>",
// with ExitNode/Published/LastStatus lines) is read as well. Malformed lines
// are counted in the report, never fatal; only a read error is returned.
func Parse(r io.Reader) (*Set, ParseReport, error) {
	var b Builder
	var rep ParseReport
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		added, err := parseLine(&b, text)
		if err != nil {
			rep.Malformed++
			if len(rep.Bad) < MaxBadLines {
				if len(text) > 80 {
					text = text[:80]
				}
				rep.Bad = append(rep.Bad, BadLine{Line: line, Text: text, Err: err.Error()})
			}
			continue
		}
		if added {
			rep.Entries++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, rep, fmt.Errorf("read list at line %d: %w", line+1, err)
	}
	return b.Build(), rep, nil
}

// parseLine adds the line's entry; added is false for blank, comment and
// Tor descriptor lines.
func parseLine(b *Builder, s string) (added bool, err error) {
	if len(s) > maxLineLen {
		return false, fmt.Errorf("line longer than %d bytes", maxLineLen)
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return false, nil
	}
	fields := strings.Fields(s)
	switch fields[0] {
	case "ExitNode", "Published", "LastStatus":
		return false, nil
	case "ExitAddress":
		if len(fields) < 2 {
			return false, fmt.Errorf("ExitAddress without an address")
		}
		s = fields[1]
	default:
		if len(fields) != 1 {
			// "a - b" ranges written with spaces.
			s = strings.Join(fields, "")
		}
	}
	if err := parseEntry(b, s); err != nil {
		return false, err
	}
	return true, nil
}

func parseEntry(b *Builder, s string) error {
	switch {
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("bad prefix %q: %w", short(s), err)
		}
		return b.AddPrefix(p)
	case strings.Contains(s, "-"):
		l, h, _ := strings.Cut(s, "-")
		lo, err := netip.ParseAddr(l)
		if err != nil {
			return fmt.Errorf("bad range start %q: %w", short(l), err)
		}
		hi, err := netip.ParseAddr(h)
		if err != nil {
			return fmt.Errorf("bad range end %q: %w", short(h), err)
		}
		return b.AddRange(lo.WithZone(""), hi.WithZone(""))
	default:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("bad address %q: %w", short(s), err)
		}
		return b.AddAddr(a.WithZone(""))
	}
}

func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
