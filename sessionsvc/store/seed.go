package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// SeedOptions describes synthetic sessions for benchmarks and demos.
type SeedOptions struct {
	N     int       // sessions to add
	From  int       // index of the first (keys and ids derive from it; seed again with From = previous N to add more)
	Users int       // distinct users (default N/4, at least 1)
	Now   time.Time // the seed's "now" (default time.Now)
	// ActiveShare is the share of sessions left active (default 0.6); the
	// rest end as logouts (two thirds) or terminations (idle, manual, expired).
	ActiveShare float64
}

// SeedKey is the session key ("sid:…") of synthetic session i.
func SeedKey(i int) string { return "sid:seed-" + strconv.Itoa(i) }

// SeedUser is the user id of synthetic user u (numeric, as Strapi's).
func SeedUser(u int) string { return strconv.Itoa(1 + u) }

// SeedSession returns synthetic session i as Seed stores it, with its key.
// Values are drawn from realistic pools by a hash of i, so a seeded database
// is reproducible and a benchmark can know what is in it.
func SeedSession(i int, o SeedOptions) (Session, SessionKey) {
	o = o.withDefaults()
	h := splitmix(uint64(i) + 0x5eed)
	next := func() uint64 { h = splitmix(h); return h }
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:8], next())
	binary.LittleEndian.PutUint64(id[8:], next())
	geo := seedCountries[next()%uint64(len(seedCountries))]
	br := seedBrowsers[next()%uint64(len(seedBrowsers))]
	age := time.Duration(next()%uint64(30*24*time.Hour/time.Second)) * time.Second
	login := o.Now.Add(-age).Truncate(time.Millisecond)
	seen := time.Duration(next()%uint64(age/time.Millisecond+1)) * time.Millisecond
	ss := Session{
		ID:            "sess_" + base64.RawURLEncoding.EncodeToString(id[:]),
		UserID:        SeedUser(int(next() % uint64(o.Users))),
		IP:            fmt.Sprintf("%d.%d.%d.%d", geo.net, next()%256, next()%256, 1+next()%254),
		UserAgent:     br.ua,
		LoginTime:     login,
		LastActive:    login.Add(seen),
		Active:        true,
		DeviceType:    br.device,
		BrowserName:   br.browser,
		OSName:        br.os,
		Geo:           &GeoLocation{Country: geo.country, CountryCode: geo.code, City: geo.city},
		SecurityScore: 60 + int(next()%41),
		ExpiresAt:     login.Add(30 * 24 * time.Hour),
		Route:         "/api/auth/local",
		Locale:        "en",
	}
	if r := float64(next()%10000) / 10000; r >= o.ActiveShare {
		ss.Active = false
		end := ss.LastActive
		ss.LogoutTime = &end
		switch r2 := (r - o.ActiveShare) / (1 - o.ActiveShare); {
		case r2 < 0.67:
			ss.TerminationReason = "logout"
		case r2 < 0.8:
			ss.TerminationReason, ss.TerminatedManually = "manual", true
		case r2 < 0.93:
			ss.TerminationReason = "idle"
		default:
			ss.TerminationReason = "expired"
		}
	}
	return ss, SessionKey{Key: SeedKey(i), Kind: KeySession, ExpiresAt: ss.ExpiresAt}
}

func (o SeedOptions) withDefaults() SeedOptions {
	if o.Users <= 0 {
		o.Users = max(1, (o.From+o.N)/4)
	}
	if o.Now.IsZero() {
		o.Now = time.Now().UTC()
	}
	if o.ActiveShare <= 0 || o.ActiveShare > 1 {
		o.ActiveShare = 0.6
	}
	return o
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

var seedCountries = []struct {
	country, code, city string
	net                 int
}{
	{"Germany", "DE", "Berlin", 91}, {"United States", "US", "New York", 23}, {"France", "FR", "Paris", 82},
	{"United Kingdom", "GB", "London", 81}, {"Netherlands", "NL", "Amsterdam", 145}, {"Spain", "ES", "Madrid", 88},
	{"Italy", "IT", "Milan", 93}, {"Poland", "PL", "Warsaw", 83}, {"Brazil", "BR", "São Paulo", 177},
	{"India", "IN", "Mumbai", 49}, {"Japan", "JP", "Tokyo", 126}, {"Canada", "CA", "Toronto", 99},
	{"Australia", "AU", "Sydney", 101}, {"Sweden", "SE", "Stockholm", 78}, {"Switzerland", "CH", "Zurich", 85},
	{"Austria", "AT", "Vienna", 62}, {"Mexico", "MX", "Mexico City", 187}, {"South Korea", "KR", "Seoul", 121},
}

var seedBrowsers = []struct{ ua, browser, os, device string }{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome 131", "Windows 10", "desktop"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari 18.1", "macOS 10.15", "desktop"},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox 133", "Linux", "desktop"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Mobile Safari 18.1", "iOS 18.1", "mobile"},
	{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome Mobile 131", "Android 14", "mobile"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge 131", "Windows 10", "desktop"},
	{"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "Mobile Safari 17.6", "iPadOS 17.6", "tablet"},
}

// Seeder is implemented by stores that can bulk-load synthetic sessions.
type Seeder interface {
	Seed(ctx context.Context, o SeedOptions, progress func(done int)) error
}

// Seed adds o.N synthetic sessions (see SeedSession), each with one key,
// by multi-row INSERTs on SQLite and COPY on PostgreSQL. It writes no
// revocation log entries and no alerts; ended sessions are simply stored
// ended. progress, if set, is called after each batch.
func Seed(ctx context.Context, st Store, o SeedOptions, progress func(done int)) error {
	sd, ok := st.(Seeder)
	if !ok {
		return errors.New("seed: this store cannot be seeded")
	}
	return sd.Seed(ctx, o, progress)
}

const seedCols = `id, user_id, ip, user_agent, login_time, last_active, logout_time, active, terminated_manually,
	termination_reason, device_type, browser_name, os_name, geo, country, security_score, score_reasons, expires_at, route, locale`

func seedRow(i int, o SeedOptions) ([]any, []any) {
	ss, k := SeedSession(i, o)
	var logout any
	if ss.LogoutTime != nil {
		logout = ms(*ss.LogoutTime)
	}
	geo := `{"country":"` + ss.Geo.Country + `","country_code":"` + ss.Geo.CountryCode + `","city":"` + ss.Geo.City + `"}`
	return []any{ss.ID, ss.UserID, ss.IP, ss.UserAgent, ms(ss.LoginTime), ms(ss.LastActive), logout, ss.Active,
			ss.TerminatedManually, ss.TerminationReason, ss.DeviceType, ss.BrowserName, ss.OSName, geo, ss.Geo.Country,
			int64(ss.SecurityScore), "[]", ms(ss.ExpiresAt), ss.Route, ss.Locale},
		[]any{k.Key, ss.ID, string(k.Kind), ms(k.ExpiresAt)}
}

func (s *sqlStore) Seed(ctx context.Context, o SeedOptions, progress func(done int)) error {
	if o.N <= 0 {
		return nil
	}
	o = o.withDefaults()
	var err error
	if s.d.name() == "postgres" {
		err = s.seedCopy(ctx, o, progress)
	} else {
		err = s.seedInsert(ctx, o, progress)
	}
	if err != nil {
		return s.wrap("seed", err)
	}
	return s.afterBulkLoad(ctx)
}

// seedInsert: multi-row INSERTs of 100 rows, 20,000 rows per transaction
// (bulk priority, so the service stays usable while a seed runs).
func (s *sqlStore) seedInsert(ctx context.Context, o SeedOptions, progress func(int)) error {
	const rowsPerStmt, rowsPerTx = 100, 20_000
	sessRow := "(" + strings.TrimSuffix(strings.Repeat("?, ", 20), ", ") + ")"
	keyRow := "(?, ?, ?, ?)"
	sessStmt := `INSERT INTO sessions (` + seedCols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(sessRow+", ", rowsPerStmt), ", ")
	keyStmt := `INSERT INTO session_keys (key, session_id, kind, expires_at) VALUES ` + strings.TrimSuffix(strings.Repeat(keyRow+", ", rowsPerStmt), ", ")
	end := o.From + o.N
	for start := o.From; start < end; start += rowsPerTx {
		stop := min(start+rowsPerTx, end)
		err := s.writeTxPrio(ctx, prioBulk, "seed", func(tx *sql.Tx) error {
			ss, err := tx.PrepareContext(ctx, sessStmt)
			if err != nil {
				return err
			}
			defer ss.Close()
			ks, err := tx.PrepareContext(ctx, keyStmt)
			if err != nil {
				return err
			}
			defer ks.Close()
			sa := make([]any, 0, 20*rowsPerStmt)
			ka := make([]any, 0, 4*rowsPerStmt)
			flush := func(full bool) error {
				if len(ka) == 0 {
					return nil
				}
				if full {
					if _, err := ss.ExecContext(ctx, sa...); err != nil {
						return err
					}
					_, err := ks.ExecContext(ctx, ka...)
					return err
				}
				n := len(ka) / 4
				if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+seedCols+`) VALUES `+
					strings.TrimSuffix(strings.Repeat(sessRow+", ", n), ", "), sa...); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO session_keys (key, session_id, kind, expires_at) VALUES `+
					strings.TrimSuffix(strings.Repeat(keyRow+", ", n), ", "), ka...)
				return err
			}
			for i := start; i < stop; i++ {
				r, k := seedRow(i, o)
				sa, ka = append(sa, r...), append(ka, k...)
				if len(ka) == 4*rowsPerStmt {
					if err := flush(true); err != nil {
						return err
					}
					sa, ka = sa[:0], ka[:0]
				}
			}
			return flush(false)
		})
		if err != nil {
			return err
		}
		if progress != nil {
			progress(stop - o.From)
		}
	}
	return nil
}

// seedCopy streams rows with COPY on one connection, 100,000 per batch.
func (s *sqlStore) seedCopy(ctx context.Context, o SeedOptions, progress func(int)) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	sessCols := strings.Fields(strings.ReplaceAll(seedCols, ",", " "))
	const batch = 100_000
	end := o.From + o.N
	for start := o.From; start < end; start += batch {
		stop := min(start+batch, end)
		sess := make([][]any, 0, stop-start)
		keys := make([][]any, 0, stop-start)
		for i := start; i < stop; i++ {
			r, k := seedRow(i, o)
			sess, keys = append(sess, r), append(keys, k)
		}
		err := conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			if _, err := pc.CopyFrom(ctx, pgx.Identifier{"sessions"}, sessCols, pgx.CopyFromRows(sess)); err != nil {
				return fmt.Errorf("copy sessions: %w", err)
			}
			if _, err := pc.CopyFrom(ctx, pgx.Identifier{"session_keys"}, []string{"key", "session_id", "kind", "expires_at"}, pgx.CopyFromRows(keys)); err != nil {
				return fmt.Errorf("copy keys: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if progress != nil {
			progress(stop - o.From)
		}
	}
	return nil
}

// afterBulkLoad refreshes what a bulk load leaves stale: PostgreSQL's
// planner statistics and visibility map (as autovacuum would, later: an
// index-only walk of session_search reads every heap page until the map
// is set) and the maintained counts.
func (s *sqlStore) afterBulkLoad(ctx context.Context) error {
	if s.d.name() == "postgres" {
		for _, t := range []string{"sessions", "session_keys", "session_search"} {
			if _, err := s.w.ExecContext(ctx, `VACUUM (ANALYZE) `+t); err != nil {
				return s.wrap("analyze "+t, err)
			}
		}
	}
	return nil
}
