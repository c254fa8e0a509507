// Package geoip locates ip addresses with a MaxMind-format database
// (.mmdb: GeoLite2/GeoIP2 City or Country, or any database with the same
// record shape) that the operator points to.
//
// The file is read into memory and reloaded when its modification time or
// size changes; the new database is swapped in atomically, so lookups never
// wait and never see a half-loaded file. A missing or corrupt file is a
// warning and geolocation stays off (or keeps the previous database) until
// a good file appears.
package geoip

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/meshsession/meshsession/internal/periodic"
	"github.com/meshsession/meshsession/sessionsvc/enrich/internal/filestamp"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Errors of Lookup, matched with errors.Is.
var (
	// ErrInvalidIP: the text is not an ip address.
	ErrInvalidIP = errors.New("invalid ip address")
	// ErrUnavailable: no database is loaded (not configured, missing or corrupt).
	ErrUnavailable = errors.New("geolocation database not available")
	// ErrNotFound: the database has no record for the address. It wraps
	// store.ErrNotFound so HTTP layers map it to 404.
	ErrNotFound = fmt.Errorf("ip address not in the geolocation database: %w", store.ErrNotFound)
)

// PrivateNetwork is the Country reported for private, loopback, link-local
// and other non-routable addresses, which are never looked up.
const PrivateNetwork = "Private network"

// MaxFileSize bounds the database file read into memory (GeoIP2 City is ~130 MB).
const MaxFileSize = 1 << 30

// record is the part of a City/Country record that is decoded. Country
// databases have no city, subdivisions or location; those stay empty.
type record struct {
	Country           names    `maxminddb:"country"`
	RegisteredCountry names    `maxminddb:"registered_country"`
	City              names    `maxminddb:"city"`
	Subdivisions      []names  `maxminddb:"subdivisions"`
	Location          location `maxminddb:"location"`
}

type names struct {
	ISOCode string `maxminddb:"iso_code"`
	Names   struct {
		En string `maxminddb:"en"`
	} `maxminddb:"names"`
}

type location struct {
	Latitude  *float64 `maxminddb:"latitude"`
	Longitude *float64 `maxminddb:"longitude"`
	TimeZone  string   `maxminddb:"time_zone"`
}

// Info describes the loaded database.
type Info struct {
	Path         string    `json:"path"`
	Loaded       bool      `json:"loaded"`
	DatabaseType string    `json:"databaseType,omitempty"`
	BuildTime    time.Time `json:"buildTime,omitzero"`
	LoadedAt     time.Time `json:"loadedAt,omitzero"`
	Error        string    `json:"error,omitempty"`
}

type loaded struct {
	r    *maxminddb.Reader
	info Info
}

// DB is a reloadable geolocation database. Safe for concurrent use; the
// zero value is not usable, build one with Open.
type DB struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[loaded] // nil while no database is loaded

	mu     sync.Mutex // serialises Reload
	file   filestamp.File
	status Info
}

// Open loads the database at path. It never fails: with an empty path
// geolocation is off; a missing or corrupt file is logged as a warning and
// geolocation stays off until Reload finds a good file.
func Open(path string, logger *slog.Logger) *DB {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DB{path: path, logger: logger.With("component", "geoip"), status: Info{Path: path}}
	if path == "" {
		d.logger.Info("geolocation off: no database configured")
		return d
	}
	d.Reload()
	return d
}

// Info describes the current database.
func (d *DB) Info() Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Loaded reports whether a database is loaded.
func (d *DB) Loaded() bool { return d.cur.Load() != nil }

// Reload reads the file again if its modification time or size changed and
// reports whether a new database was swapped in (or the old one dropped
// because the file is gone).
func (d *DB) Reload() bool {
	if d.path == "" {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fi, changed, err := d.file.Check(d.path)
	if !changed {
		return false
	}
	if err != nil {
		msg := "geolocation database unreadable; geolocation off until it is fixed"
		if errors.Is(err, fs.ErrNotExist) {
			msg = "geolocation database missing; geolocation off until the file appears"
		}
		d.logger.Warn(msg, "path", d.path, "error", err)
		d.status = Info{Path: d.path, Error: err.Error()}
		return d.cur.Swap(nil) != nil
	}
	l, err := load(d.path, fi.Size())
	if err != nil {
		if d.cur.Load() != nil {
			d.logger.Warn("geolocation database not reloaded; keeping the previous one", "path", d.path, "error", err)
		} else {
			d.logger.Warn("geolocation database unusable; geolocation off until a good file appears", "path", d.path, "error", err)
		}
		d.status.Error = err.Error()
		return false
	}
	d.cur.Store(l)
	d.status = l.info
	d.logger.Info("geolocation database loaded", "path", d.path, "type", l.info.DatabaseType,
		"built", l.info.BuildTime.UTC().Format(time.DateOnly), "bytes", fi.Size())
	return true
}

func load(path string, size int64) (*loaded, error) {
	if size > MaxFileSize {
		return nil, fmt.Errorf("database file is %d bytes, more than the %d allowed", size, MaxFileSize)
	}
	// Read into memory rather than mmap: an old reader may still be in use
	// by a lookup when a new one is swapped in, and a heap buffer needs no Close.
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read geolocation database: %w", err)
	}
	r, err := openBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("open geolocation database %s: %w", path, err)
	}
	return &loaded{r: r, info: Info{
		Path:         path,
		Loaded:       true,
		DatabaseType: r.Metadata.DatabaseType,
		BuildTime:    r.Metadata.BuildTime().UTC(),
		LoadedAt:     time.Now().UTC(),
	}}, nil
}

// openBytes opens a database, turning a panic of the decoder on a hostile
// file into an error.
func openBytes(buf []byte) (r *maxminddb.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("corrupt database: %v", p)
		}
	}()
	r, err = maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, err
	}
	// A probe lookup catches a broken search tree now rather than on every login.
	var rec record
	if err := r.Lookup(netip.MustParseAddr("1.1.1.1")).Decode(&rec); err != nil {
		return nil, fmt.Errorf("probe lookup: %w", err)
	}
	return r, nil
}

// Run reloads the database when the file changes, checking every interval,
// until ctx is done.
func (d *DB) Run(ctx context.Context, interval time.Duration) {
	if d.path == "" {
		return
	}
	if interval <= 0 {
		interval = 30 * time.Second
	}
	periodic.Run(ctx, interval, func(context.Context) { d.Reload() })
}

// ParseIP parses an address as sent by a proxy: surrounding spaces and
// brackets are dropped, a zone is dropped, IPv4-mapped IPv6 is unmapped.
func ParseIP(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if len(s) > 64 {
		return netip.Addr{}, fmt.Errorf("%w: too long", ErrInvalidIP)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrInvalidIP, s)
	}
	return a.WithZone("").Unmap(), nil
}

// IsPrivate reports addresses that have no public location: private
// (RFC 1918, fc00::/7), loopback, link-local, unspecified, multicast and
// shared CGNAT space (100.64.0.0/10). Other reserved ranges are left to the
// database, which simply has no record for them.
func IsPrivate(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsUnspecified() || a.IsMulticast() {
		return true
	}
	return cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Lookup locates an ip given as text (the admin endpoint
// GET /magic-sessionmanager/geolocation/{ip}). A private address answers
// Country PrivateNetwork without a lookup; errors are ErrInvalidIP,
// ErrUnavailable and ErrNotFound.
func (d *DB) Lookup(ctx context.Context, ip string) (*store.GeoLocation, error) {
	a, err := ParseIP(ip)
	if err != nil {
		return nil, err
	}
	return d.Locate(a)
}

// Locate locates a parsed address (see Lookup).
func (d *DB) Locate(a netip.Addr) (g *store.GeoLocation, err error) {
	defer func() {
		// A database that passed the checks at load but is broken deeper
		// must not take the login down with it.
		if p := recover(); p != nil {
			g, err = nil, fmt.Errorf("geolocation lookup %s: corrupt database: %v", a, p)
		}
	}()
	if !a.IsValid() {
		return nil, ErrInvalidIP
	}
	a = a.WithZone("").Unmap()
	if IsPrivate(a) {
		return &store.GeoLocation{Country: PrivateNetwork}, nil
	}
	l := d.cur.Load()
	if l == nil {
		return nil, ErrUnavailable
	}
	var rec record
	res := l.r.Lookup(a)
	if !res.Found() {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("geolocation lookup %s: %w", a, err)
		}
		return nil, ErrNotFound
	}
	if err := res.Decode(&rec); err != nil {
		return nil, fmt.Errorf("geolocation lookup %s: %w", a, err)
	}
	g = &store.GeoLocation{
		Country:     rec.Country.Names.En,
		CountryCode: rec.Country.ISOCode,
		City:        rec.City.Names.En,
		Timezone:    rec.Location.TimeZone,
	}
	if g.CountryCode == "" {
		// Anycast and satellite networks have only a registered country.
		g.Country, g.CountryCode = rec.RegisteredCountry.Names.En, rec.RegisteredCountry.ISOCode
	}
	if len(rec.Subdivisions) > 0 {
		g.Region = rec.Subdivisions[0].Names.En
		if g.Region == "" {
			g.Region = rec.Subdivisions[0].ISOCode
		}
	}
	if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
		g.Latitude, g.Longitude = *rec.Location.Latitude, *rec.Location.Longitude
	}
	if *g == (store.GeoLocation{}) {
		return nil, ErrNotFound
	}
	return g, nil
}

// HasCoordinates reports whether g carries a position (a Country database
// has none; 0,0 is treated as unknown).
func HasCoordinates(g *store.GeoLocation) bool {
	return g != nil && (g.Latitude != 0 || g.Longitude != 0)
}
