package reputation

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshsession/meshsession/internal/periodic"
	"github.com/meshsession/meshsession/sessionsvc/enrich/internal/filestamp"
)

// Category names a list.
type Category int

// The lists.
const (
	Tor Category = iota
	VPN
	Proxy
	Datacenter
	Threat
	numCategories
)

var categoryNames = [numCategories]string{"tor", "vpn", "proxy", "datacenter", "threat"}

func (c Category) String() string {
	if c < 0 || c >= numCategories {
		return fmt.Sprintf("category(%d)", int(c))
	}
	return categoryNames[c]
}

// Files are the paths of the lists; an empty path leaves that list off.
type Files struct {
	Tor        string `json:"tor,omitempty"`
	VPN        string `json:"vpn,omitempty"`
	Proxy      string `json:"proxy,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	Threat     string `json:"threat,omitempty"`
}

func (f Files) paths() [numCategories]string {
	return [numCategories]string{f.Tor, f.VPN, f.Proxy, f.Datacenter, f.Threat}
}

// Flags says which lists an address is on.
type Flags struct {
	Tor        bool `json:"tor"`
	VPN        bool `json:"vpn"`
	Proxy      bool `json:"proxy"`
	Datacenter bool `json:"datacenter"`
	Threat     bool `json:"threat"`
}

// Any reports whether the address is on any list.
func (f Flags) Any() bool { return f.Tor || f.VPN || f.Proxy || f.Datacenter || f.Threat }

// ListStatus describes one loaded list.
type ListStatus struct {
	Category  string    `json:"category"`
	Path      string    `json:"path"`
	Loaded    bool      `json:"loaded"`
	Entries   int       `json:"entries"`
	Ranges    int       `json:"ranges"`
	Malformed int       `json:"malformed"`
	LoadedAt  time.Time `json:"loadedAt,omitzero"`
	Error     string    `json:"error,omitempty"`
}

type snapshot struct {
	sets [numCategories]*Set
}

// Lists holds the loaded lists and reloads them when their files change.
// Check is lock-free; reloads build new sets off to the side and swap them in.
type Lists struct {
	paths  [numCategories]string
	logger *slog.Logger

	cur atomic.Pointer[snapshot]

	mu     sync.Mutex // serialises Reload
	files  [numCategories]filestamp.File
	status [numCategories]ListStatus
}

// NewLists loads the lists that have a path. A missing or unreadable file is
// a warning and that list stays empty until the file appears.
func NewLists(files Files, logger *slog.Logger) *Lists {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Lists{paths: files.paths(), logger: logger.With("component", "reputation")}
	for c := range numCategories {
		l.status[c] = ListStatus{Category: c.String(), Path: l.paths[c]}
	}
	l.cur.Store(&snapshot{})
	l.Reload()
	return l
}

// Check says which lists hold a. Invalid addresses are on no list.
func (l *Lists) Check(a netip.Addr) Flags {
	s := l.cur.Load()
	return Flags{
		Tor:        s.sets[Tor].Contains(a),
		VPN:        s.sets[VPN].Contains(a),
		Proxy:      s.sets[Proxy].Contains(a),
		Datacenter: s.sets[Datacenter].Contains(a),
		Threat:     s.sets[Threat].Contains(a),
	}
}

// Status describes every configured list.
func (l *Lists) Status() []ListStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ListStatus
	for c := range numCategories {
		if l.paths[c] != "" {
			out = append(out, l.status[c])
		}
	}
	return out
}

// Reload re-reads the lists whose file changed (modification time or size)
// and reports whether anything was swapped in.
func (l *Lists) Reload() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := *l.cur.Load()
	changed := false
	for c := range numCategories {
		path := l.paths[c]
		if path == "" {
			continue
		}
		_, fileChanged, err := l.files[c].Check(path)
		if !fileChanged {
			continue
		}
		if err != nil {
			msg := "ip reputation list unreadable; list off until it is fixed"
			if errors.Is(err, fs.ErrNotExist) {
				msg = "ip reputation list missing; list off until the file appears"
			}
			l.logger.Warn(msg, "list", c.String(), "path", path, "error", err)
			next.sets[c] = nil
			l.status[c].Loaded = false
			l.status[c].Error = err.Error()
			changed = true
			continue
		}
		set, err := l.load(c, path)
		if err != nil {
			// Keep what we had; try again when the file changes.
			l.logger.Warn("ip reputation list not reloaded; keeping the previous one", "list", c.String(), "path", path, "error", err)
			l.status[c].Error = err.Error()
			continue
		}
		next.sets[c] = set
		changed = true
	}
	if changed {
		l.cur.Store(&next)
	}
	return changed
}

func (l *Lists) load(c Category, path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s list: %w", c, err)
	}
	defer f.Close()
	start := time.Now()
	set, rep, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s list %s: %w", c, path, err)
	}
	for _, b := range rep.Bad {
		l.logger.Warn("ip reputation list: malformed line skipped", "list", c.String(), "path", path, "line", b.Line, "text", b.Text, "error", b.Err)
	}
	if rep.Malformed > len(rep.Bad) {
		l.logger.Warn("ip reputation list: more malformed lines skipped", "list", c.String(), "path", path, "more", rep.Malformed-len(rep.Bad))
	}
	l.logger.Info("ip reputation list loaded", "list", c.String(), "path", path,
		"entries", rep.Entries, "ranges", set.Ranges(), "malformed", rep.Malformed, "took", time.Since(start).Round(time.Millisecond))
	l.status[c] = ListStatus{
		Category: c.String(), Path: path, Loaded: true, Entries: rep.Entries,
		Ranges: set.Ranges(), Malformed: rep.Malformed, LoadedAt: time.Now().UTC(),
	}
	return set, nil
}

// Run reloads changed lists every interval until ctx is done.
func (l *Lists) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	periodic.Run(ctx, interval, func(context.Context) { l.Reload() })
}
