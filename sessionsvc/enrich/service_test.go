package enrich_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/alert"
	"github.com/meshsession/meshsession/sessionsvc/enrich"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
	"github.com/meshsession/meshsession/sessionsvc/enrich/policy"
	"github.com/meshsession/meshsession/sessionsvc/enrich/reputation"
	"github.com/meshsession/meshsession/sessionsvc/lockout"
	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

const (
	uaChromeWin  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaFirefoxLin = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaIPhone     = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"

	ipLondon  = "81.2.69.142"
	ipBerlin  = "85.214.10.20"
	ipSydney  = "1.130.0.7"
	ipTor     = "185.220.101.1"
	ipVPN     = "198.18.0.9" // benchmarking range, listed as VPN in the fixture
	ipThreat  = "45.155.205.3"
	ipHosting = "2a05:d014::1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	st     store.Store
	svc    *enrich.Service
	policy *policy.Holder
	dir    string
	logs   *bytes.Buffer
}

func writeLists(t testing.TB, dir string) reputation.Files {
	t.Helper()
	files := reputation.Files{
		Tor:        filepath.Join(dir, "tor.txt"),
		VPN:        filepath.Join(dir, "vpn.txt"),
		Proxy:      filepath.Join(dir, "proxy.txt"),
		Datacenter: filepath.Join(dir, "dc.txt"),
		Threat:     filepath.Join(dir, "threat.txt"),
	}
	for path, body := range map[string]string{
		files.Tor:        "# tor exits\n185.220.101.1\n185.220.101.2\n",
		files.VPN:        "198.18.0.0/15\n",
		files.Proxy:      "203.0.113.0/24\n",
		files.Datacenter: "2a05:d014::/32\n",
		files.Threat:     "45.155.205.0/24\n",
	} {
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	}
	return files
}

func newFixture(t testing.TB, st store.Store) *fixture {
	t.Helper()
	dir := t.TempDir()
	mmdb := filepath.Join(dir, "city.mmdb")
	require.NoError(t, geoiptest.Write(mmdb, geoiptest.City, append(geoiptest.Samples,
		geoiptest.Place{Network: "185.220.101.0/24", CountryCode: "DE", Country: "Germany", City: "Frankfurt", Latitude: 50.11, Longitude: 8.68, TimeZone: "Europe/Berlin"},
		geoiptest.Place{Network: "45.155.205.0/24", CountryCode: "RU", Country: "Russia", City: "Moscow", Latitude: 55.75, Longitude: 37.62, TimeZone: "Europe/Moscow"},
	)))
	if st == nil {
		st = storetest.OpenSQLite(t)
	}
	logs := &bytes.Buffer{}
	h := policy.NewHolder(nil)
	svc, err := enrich.New(enrich.Config{
		GeoIPPath:     mmdb,
		Reputation:    writeLists(t, dir),
		Policy:        h.Get,
		AlertChannels: func(string) []string { return []string{"email", "webhook:ops"} },
	}, st, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	return &fixture{st: st, svc: svc, policy: h, dir: dir, logs: logs}
}

func (f *fixture) setPolicy(t testing.TB, mut func(*policy.Policy)) {
	t.Helper()
	p := policy.Default()
	mut(&p)
	require.NoError(t, f.policy.Set(p))
}

// login enriches a login and, when allowed, stores it as the server would.
func (f *fixture) login(t testing.TB, user, ip, ua string, at time.Time) enrich.Result {
	t.Helper()
	ctx := context.Background()
	res, err := f.svc.EnrichLogin(ctx, enrich.Login{UserID: user, IP: ip, UserAgent: ua, At: at, Locale: "de-DE"})
	require.NoError(t, err)
	if !res.Deny {
		s := &store.Session{UserID: user, IP: ip, UserAgent: ua, LoginTime: at, LastActive: at,
			DeviceType: res.DeviceType, BrowserName: res.BrowserName, OSName: res.OSName, Geo: res.Geo,
			SecurityScore: res.Score, ScoreReasons: res.Reasons}
		key := fmt.Sprintf("fp:%s-%d", user, at.UnixNano())
		require.NoError(t, f.st.CreateSession(ctx, s, []store.SessionKey{{Key: key, Kind: store.KeyAccess}}, res.Alerts))
	}
	return res
}

func events(alerts []store.Alert) map[string][]string {
	out := map[string][]string{}
	for _, a := range alerts {
		out[a.Event] = append(out[a.Event], a.Channel)
	}
	return out
}

func TestFirstLoginIsClean(t *testing.T) {
	f := newFixture(t, nil)
	res := f.login(t, "alice", ipLondon, uaChromeWin, t0)
	assert.Equal(t, "desktop", res.DeviceType)
	assert.Equal(t, "Chrome 131", res.BrowserName)
	assert.Equal(t, "Windows 10", res.OSName)
	require.NotNil(t, res.Geo)
	assert.Equal(t, "GB", res.Geo.CountryCode)
	assert.Equal(t, "London", res.Geo.City)
	assert.Equal(t, 100, res.Score)
	assert.Equal(t, "low", res.Risk)
	assert.Empty(t, res.Reasons)
	assert.False(t, res.Deny)
	assert.Empty(t, res.Alerts, "login.success is off by default")

	f.setPolicy(t, func(p *policy.Policy) { p.Alerts.Events = append(p.Alerts.Events, alert.EventLoginSuccess) })
	res = f.login(t, "alice", ipLondon, uaChromeWin, t0.Add(time.Hour))
	assert.Equal(t, map[string][]string{alert.EventLoginSuccess: {"email", "webhook:ops"}}, events(res.Alerts))
	p, err := alert.DecodePayload(res.Alerts[0])
	require.NoError(t, err)
	assert.Equal(t, "alice", p.UserID)
	assert.Equal(t, "de-DE", p.Locale)
	assert.Equal(t, "London", p.Geo.City)
	require.NotNil(t, p.Score)
	assert.Equal(t, 100, *p.Score)
}

func TestHistorySignalsFromTheStore(t *testing.T) {
	f := newFixture(t, nil)
	f.login(t, "bob", ipLondon, uaChromeWin, t0)
	f.login(t, "bob", ipLondon, uaIPhone, t0.Add(time.Hour))

	// Two hours later from Sydney on a new Linux box.
	res := f.login(t, "bob", ipSydney, uaFirefoxLin, t0.Add(3*time.Hour))
	assert.Equal(t, 100-15-10-30, res.Score)
	assert.Equal(t, "high", res.Risk)
	require.Len(t, res.Reasons, 3)
	assert.Contains(t, res.Reasons[0], "new country AU")
	assert.Contains(t, res.Reasons[1], "new device Firefox/Linux")
	assert.Contains(t, res.Reasons[2], "impossible travel")
	ev := events(res.Alerts)
	assert.Contains(t, ev, alert.EventLoginNewLocation)
	assert.Contains(t, ev, alert.EventLoginSuspicious)
	assert.Len(t, res.Alerts, 4, "two events on two channels")

	// The alerts were written in the registration's transaction.
	queued, err := f.st.ListAlerts(context.Background(), false, 100)
	require.NoError(t, err)
	assert.Len(t, queued, 4)

	// Another user's history does not count.
	res = f.login(t, "carol", ipSydney, uaFirefoxLin, t0.Add(3*time.Hour))
	assert.Equal(t, 100, res.Score)
}

func TestConcurrentSessions(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 5 {
		res := f.login(t, "dave", ipLondon, uaChromeWin, t0.Add(time.Duration(i)*time.Minute))
		assert.Equal(t, 100, res.Score, "session %d", i+1)
	}
	res := f.login(t, "dave", ipLondon, uaChromeWin, t0.Add(10*time.Minute))
	assert.Equal(t, 90, res.Score)
	assert.Equal(t, []string{"6 concurrent active sessions (more than 5)"}, res.Reasons)

	// Ending sessions brings the count down.
	_, err := f.st.EndSessions(context.Background(), store.EndFilter{UserID: "dave"}, protocol.ReasonLogout, false, t0.Add(11*time.Minute))
	require.NoError(t, err)
	res = f.login(t, "dave", ipLondon, uaChromeWin, t0.Add(12*time.Minute))
	assert.Equal(t, 100, res.Score)
}

func TestActiveSessionsCountedWithinHistory(t *testing.T) {
	f := newFixture(t, nil)
	f.setPolicy(t, func(p *policy.Policy) { p.Score.HistorySize = 3; p.Score.MaxConcurrentSessions = 3 })
	for i := range 3 {
		f.login(t, "erin", ipLondon, uaChromeWin, t0.Add(time.Duration(i)*time.Minute))
	}
	res := f.login(t, "erin", ipLondon, uaChromeWin, t0.Add(time.Hour))
	assert.Equal(t, []string{"4 concurrent active sessions (more than 3)"}, res.Reasons)
}

func TestReputationAndPolicy(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name    string
		mut     func(*policy.Policy)
		ip      string
		deny    bool
		message string
		score   int
		events  []string
	}{
		{"tor allowed by default", nil, ipTor, false, "", 50, []string{alert.EventLoginSuspicious, alert.EventLoginVPN}},
		{"tor blocked", func(p *policy.Policy) { p.BlockTor = true }, ipTor, true, "Logins through Tor are not allowed.", 50, []string{alert.EventLoginSuspicious, alert.EventLoginVPN}},
		{"vpn", nil, ipVPN, false, "", 80, []string{alert.EventLoginVPN}},
		{"vpn blocked", func(p *policy.Policy) { p.BlockVPN = true }, ipVPN, true, "Logins through a VPN are not allowed.", 80, []string{alert.EventLoginSuspicious, alert.EventLoginVPN}},
		{"threat", nil, ipThreat, false, "", 60, []string{alert.EventLoginThreat}},
		{"threat blocked", func(p *policy.Policy) { p.BlockThreat = true }, ipThreat, true, "Logins from this network are not allowed.", 60, []string{alert.EventLoginSuspicious, alert.EventLoginThreat}},
		{"hosting", func(p *policy.Policy) { p.BlockDatacenter = true }, ipHosting, true, "Logins from hosting networks are not allowed.", 90, []string{alert.EventLoginSuspicious}},
		{"blocked country", func(p *policy.Policy) { p.BlockedCountries = []string{"gb"} }, ipLondon, true, "Logins from United Kingdom are not allowed.", 100, []string{alert.EventLoginSuspicious}},
		{"allowed countries", func(p *policy.Policy) { p.AllowedCountries = []string{"DE", "AT"} }, ipLondon, true, "Logins from United Kingdom are not allowed.", 100, []string{alert.EventLoginSuspicious}},
		{"allowed country passes", func(p *policy.Policy) { p.AllowedCountries = []string{"DE", "AT"} }, ipBerlin, false, "", 100, nil},
		{"private ip with allow list", func(p *policy.Policy) { p.AllowedCountries = []string{"DE"} }, "10.0.0.8", false, "", 100, nil},
		{"private ip denied when unknown denied", func(p *policy.Policy) { p.AllowedCountries = []string{"DE"}; p.DenyUnknownCountry = true }, "10.0.0.8", true, "Logins from an unknown location are not allowed.", 100, []string{alert.EventLoginSuspicious}},
		{"min score", func(p *policy.Policy) { p.MinScore = 70 }, ipTor, true, "This login looks unsafe and was refused.", 50, []string{alert.EventLoginSuspicious, alert.EventLoginVPN}},
		{"min score passes", func(p *policy.Policy) { p.MinScore = 70 }, ipVPN, false, "", 80, []string{alert.EventLoginVPN}},
		{"zero weight", func(p *policy.Policy) { p.Score.Tor = 0 }, ipTor, false, "", 100, []string{alert.EventLoginVPN}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.setPolicy(t, func(p *policy.Policy) {
				if tt.mut != nil {
					tt.mut(p)
				}
			})
			res, err := f.svc.EnrichLogin(context.Background(), enrich.Login{UserID: fmt.Sprintf("u%d", i), IP: tt.ip, UserAgent: uaChromeWin, At: t0})
			require.NoError(t, err)
			assert.Equal(t, tt.deny, res.Deny)
			assert.Equal(t, tt.message, res.DenyMessage)
			if tt.deny {
				assert.Equal(t, protocol.ReasonPolicy, res.DenyReason)
			}
			assert.Equal(t, tt.score, res.Score)
			var got []string
			for e, ch := range events(res.Alerts) {
				assert.Len(t, ch, 2)
				got = append(got, e)
			}
			assert.ElementsMatch(t, tt.events, got)
		})
	}
}

func TestPrivateAndBadInput(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, ip := range []string{"127.0.0.1", "::1", "192.168.1.5", "::ffff:10.1.1.1", "fe80::1%eth0"} {
		res, err := f.svc.EnrichLogin(ctx, enrich.Login{UserID: "p", IP: ip, UserAgent: uaChromeWin, At: t0})
		require.NoError(t, err, ip)
		require.NotNil(t, res.Geo, ip)
		assert.Equal(t, geoip.PrivateNetwork, res.Geo.Country, ip)
		assert.Equal(t, 100, res.Score, ip)
	}
	// Mapped public address: located and checked as IPv4.
	res, err := f.svc.EnrichLogin(ctx, enrich.Login{UserID: "p", IP: "::ffff:" + ipTor, At: t0})
	require.NoError(t, err)
	assert.Equal(t, "Frankfurt", res.Geo.City)
	assert.Contains(t, res.Reasons, "Tor exit node")

	for _, ip := range []string{"", "not-an-ip", "1.2.3.4.5", "300.1.1.1", string([]byte{0xff, 0xfe})} {
		res, err := f.svc.EnrichLogin(ctx, enrich.Login{UserID: "p", IP: ip, UserAgent: "", At: t0})
		require.NoError(t, err, "%q", ip)
		assert.Nil(t, res.Geo)
		assert.Equal(t, "unknown", res.DeviceType)
		assert.Equal(t, 100, res.Score)
	}
	assert.Contains(t, f.logs.String(), "unusable ip address")

	// Absurd user agent.
	res, err = f.svc.EnrichLogin(ctx, enrich.Login{UserID: "p", IP: ipLondon, UserAgent: string(bytes.Repeat([]byte{0, 0xff, 'x'}, 4000)), At: t0})
	require.NoError(t, err)
	assert.Equal(t, "unknown", res.DeviceType)
}

// TestLockout runs on SQLite and PostgreSQL; the second "replica" has its
// own store handle on the same database.
func TestLockout(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			replicas := storetest.Replicas(t, b.URL(t), 2)
			testLockout(t, replicas[0], replicas[1])
		})
	}
}

func testLockout(t *testing.T, st1, st2 store.Store) {
	f := newFixture(t, st1)
	ctx := context.Background()
	f.setPolicy(t, func(p *policy.Policy) {
		p.Lockout = policy.Lockout{MaxFailures: 3, WindowMinutes: 10, LockMinutes: 30, PerIP: true, PerUser: true,
			IPMaxFailures: 4, IPWindowMinutes: 10, IPLockMinutes: 20}
	})
	other := newFixture(t, st2)
	require.NoError(t, other.policy.Set(f.policy.Get()))
	check := func(fx *fixture, ip, ident string, at time.Time) bool {
		t.Helper()
		l, err := fx.svc.Guard().Check(ctx, lockout.Attempt{IP: ip, Identifier: ident, HasIdentifier: true}, at)
		require.NoError(t, err)
		return l.Locked
	}

	// Failures from one ip against different accounts lock the ip at its
	// own threshold (4), none of the accounts (3 each) on the way.
	for i := range 3 {
		locked, err := f.svc.FailedLogin(ctx, protocol.FailedLogin{IP: ipBerlin, Identifier: fmt.Sprintf("victim%d", i), Status: 401}, t0.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
		assert.False(t, locked)
	}
	locked, err := other.svc.FailedLogin(ctx, protocol.FailedLogin{IP: ipBerlin, Identifier: "victim3", Status: 401}, t0.Add(3*time.Minute))
	require.NoError(t, err)
	assert.True(t, locked, "the fourth failure, on the other replica, locks the ip")

	// Any login from that ip is refused while the lock lasts, on any replica.
	assert.True(t, check(other, ipBerlin, "someone", t0.Add(5*time.Minute)))
	assert.False(t, check(f, ipLondon, "victim0", t0.Add(5*time.Minute)), "other addresses and the accounts are not locked")
	assert.False(t, check(f, ipBerlin, "someone", t0.Add(23*time.Minute)), "the ip lock lasts ipLockMinutes")

	// Failures spread beyond the window never lock.
	for i := range 6 {
		locked, err := f.svc.FailedLogin(ctx, protocol.FailedLogin{IP: ipSydney, Status: 401}, t0.Add(time.Duration(i)*11*time.Minute))
		require.NoError(t, err)
		assert.False(t, locked, "failure %d", i)
	}

	// IPv6: the /64 is locked, whatever address within it.
	for i := range 4 {
		locked, err = f.svc.FailedLogin(ctx, protocol.FailedLogin{IP: fmt.Sprintf("2001:db8:aa:bb::%x", i+1), Identifier: fmt.Sprintf("v%d", i), Status: 401}, t0)
		require.NoError(t, err)
	}
	assert.True(t, locked)
	assert.True(t, check(f, "2001:db8:aa:bb:ffff::9", "x", t0.Add(time.Minute)))
	assert.False(t, check(f, "2001:db8:aa:bc::1", "x", t0.Add(time.Minute)), "the neighbouring /64 is not locked")

	// Per identifier: locked whatever the ip, in its normalised form.
	for i := range 3 {
		locked, err = f.svc.FailedLogin(ctx, protocol.FailedLogin{IP: fmt.Sprintf("81.2.69.%d", i+1), Identifier: "Alice@Example.com", Status: 401}, t0)
		require.NoError(t, err)
	}
	assert.True(t, locked)
	assert.True(t, check(f, ipLondon, "  alice@EXAMPLE.com ", t0.Add(time.Minute)))
	assert.False(t, check(f, ipLondon, "bob@example.com", t0.Add(time.Minute)))

	// Lockout off: nothing counted.
	f.setPolicy(t, func(p *policy.Policy) { p.Lockout.MaxFailures, p.Lockout.IPMaxFailures = 0, 0 })
	locked, err = f.svc.FailedLogin(ctx, protocol.FailedLogin{IP: ipTor, Identifier: "z"}, t0)
	require.NoError(t, err)
	assert.False(t, locked)
	list, err := f.st.ListLockouts(ctx, t0.Add(-time.Hour), 100)
	require.NoError(t, err)
	for _, c := range list {
		assert.NotEqual(t, "z", c.Subject)
	}
}

func TestCheckLoginRequest(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	d, err := f.svc.CheckLoginRequest(ctx, ipTor, uaChromeWin, t0)
	require.NoError(t, err)
	assert.False(t, d.Deny, "nothing blocked by default")
	assert.Equal(t, 50, d.Score)
	f.setPolicy(t, func(p *policy.Policy) { p.BlockTor = true })
	d, err = f.svc.CheckLoginRequest(ctx, ipTor, uaChromeWin, t0)
	require.NoError(t, err)
	assert.True(t, d.Deny)
	assert.Equal(t, "Logins through Tor are not allowed.", d.Message)
	f.setPolicy(t, func(p *policy.Policy) { p.BlockTor = false; p.MinScore = 60 })
	d, err = f.svc.CheckLoginRequest(ctx, ipTor, uaChromeWin, t0)
	require.NoError(t, err)
	assert.True(t, d.Deny, "the address alone scores below the minimum")
	d, err = f.svc.CheckLoginRequest(ctx, ipLondon, uaChromeWin, t0)
	require.NoError(t, err)
	assert.False(t, d.Deny)
	d, err = f.svc.CheckLoginRequest(ctx, "not-an-ip", "", t0)
	require.NoError(t, err)
	assert.False(t, d.Deny)
}

func TestPolicyFromStoreSettingsTakesEffect(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	res := f.login(t, "frank", ipLondon, uaChromeWin, t0)
	assert.False(t, res.Deny)

	require.NoError(t, f.st.PutSettings(ctx, json.RawMessage(`{"inactivityTimeout":15,"security":{"blockedCountries":["GB"]}}`)))
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.policy.Watch(watchCtx, f.st, 10*time.Millisecond, nil)
	require.Eventually(t, func() bool {
		res, err := f.svc.EnrichLogin(ctx, enrich.Login{UserID: "frank", IP: ipLondon, At: t0.Add(time.Minute)})
		return err == nil && res.Deny
	}, 5*time.Second, 10*time.Millisecond)

	// An invalid document keeps the current policy.
	require.NoError(t, f.st.PutSettings(ctx, json.RawMessage(`{"security":{"blockedCountries":["Great Britain"]}}`)))
	err := f.policy.Load(ctx, f.st)
	require.Error(t, err)
	assert.Equal(t, []string{"GB"}, f.policy.Get().BlockedCountries)
}

func TestSessionEnded(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	s1 := store.Session{ID: "sess_1", UserID: "u1", IP: ipLondon, SecurityScore: 90, Locale: "fr"}
	s2 := store.Session{ID: "sess_2", UserID: "u1", IP: ipBerlin}
	s3 := store.Session{ID: "sess_3", UserID: "u2"}

	a := f.svc.SessionEnded(ctx, []store.Session{s1, s2}, protocol.ReasonManual, t0)
	assert.Equal(t, map[string][]string{alert.EventSessionTerminated: {"email", "webhook:ops", "email", "webhook:ops"}}, events(a))
	p, err := alert.DecodePayload(a[0])
	require.NoError(t, err)
	assert.Equal(t, "sess_1", p.SessionID)
	assert.Equal(t, protocol.ReasonManual, p.Reason)
	assert.Equal(t, "fr", p.Locale)

	assert.Empty(t, f.svc.SessionEnded(ctx, []store.Session{s1}, protocol.ReasonLogout, t0), "a user's own logout raises nothing")
	assert.Empty(t, f.svc.SessionEnded(ctx, []store.Session{s1}, protocol.ReasonIdle, t0))
	assert.Len(t, f.svc.SessionEnded(ctx, []store.Session{s1}, protocol.ReasonReuse, t0), 2)

	a = f.svc.SessionEnded(ctx, []store.Session{s1, s2, s3}, protocol.ReasonBlocked, t0)
	assert.Len(t, a, 4, "one user.blocked per user per channel")
	p, err = alert.DecodePayload(a[0])
	require.NoError(t, err)
	assert.Equal(t, alert.EventUserBlocked, p.Event)
	assert.Equal(t, 2, p.Sessions)

	require.NoError(t, f.st.EnqueueAlerts(ctx, a))

	f.setPolicy(t, func(p *policy.Policy) { p.Alerts.Events = nil })
	assert.Empty(t, f.svc.SessionEnded(ctx, []store.Session{s1}, protocol.ReasonBlocked, t0))
}

// TestUserBlocked: a block alerts once per channel, with or without
// sessions ended (Sessions 0 then); the policy can turn it off.
func TestUserBlocked(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	a := f.svc.UserBlocked(ctx, "lonely", nil, t0)
	assert.Equal(t, map[string][]string{alert.EventUserBlocked: {"email", "webhook:ops"}}, events(a))
	p, err := alert.DecodePayload(a[0])
	require.NoError(t, err)
	assert.Equal(t, "lonely", p.UserID)
	assert.Equal(t, 0, p.Sessions)
	assert.Equal(t, protocol.ReasonBlocked, p.Reason)
	require.NoError(t, f.st.EnqueueAlerts(ctx, a))

	a = f.svc.UserBlocked(ctx, "u1", []store.Session{{ID: "sess_1", UserID: "u1"}, {ID: "sess_2", UserID: "u1", Locale: "de"}}, t0)
	require.Len(t, a, 2)
	p, err = alert.DecodePayload(a[0])
	require.NoError(t, err)
	assert.Equal(t, 2, p.Sessions)
	assert.Equal(t, "de", p.Locale)

	f.setPolicy(t, func(p *policy.Policy) { p.Alerts.Events = nil })
	assert.Empty(t, f.svc.UserBlocked(ctx, "lonely", nil, t0))
}

// failingStore fails every history read.
type failingStore struct{ store.Store }

func (failingStore) ListSessions(context.Context, store.SessionQuery) (store.SessionPage, error) {
	return store.SessionPage{}, fmt.Errorf("list sessions: %w", store.ErrUnavailable)
}

func TestStoreFailureDegrades(t *testing.T) {
	f := newFixture(t, failingStore{storetest.OpenSQLite(t)})
	res, err := f.svc.EnrichLogin(context.Background(), enrich.Login{UserID: "g", IP: ipTor, UserAgent: uaChromeWin, At: t0})
	require.NoError(t, err)
	assert.Equal(t, 50, res.Score, "reputation still counts")
	assert.False(t, res.Deny)
	assert.Contains(t, f.logs.String(), "history signals skipped")
}

func TestGeolocate(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	v, err := f.svc.Geolocate(ctx, ipTor)
	require.NoError(t, err)
	info := v.(*enrich.IPInfo)
	assert.Equal(t, "DE", info.CountryCode)
	assert.Equal(t, "🇩🇪", info.CountryFlag)
	assert.True(t, info.IsTor)
	assert.Equal(t, 50, info.SecurityScore)
	assert.Equal(t, "high", info.RiskLevel)
	assert.True(t, info.Located)

	v, err = f.svc.Geolocate(ctx, "8.8.8.8")
	require.NoError(t, err)
	assert.False(t, v.(*enrich.IPInfo).Located)

	v, err = f.svc.Geolocate(ctx, "10.0.0.1")
	require.NoError(t, err)
	assert.True(t, v.(*enrich.IPInfo).IsPrivate)

	_, err = f.svc.Geolocate(ctx, "nope")
	assert.ErrorIs(t, err, geoip.ErrInvalidIP)

	g, err := f.svc.Lookup(ctx, ipSydney)
	require.NoError(t, err)
	assert.Equal(t, "Sydney", g.City)
}

func TestMissingSourcesStillEnrich(t *testing.T) {
	st := storetest.OpenSQLite(t)
	var logs bytes.Buffer
	svc, err := enrich.New(enrich.Config{
		GeoIPPath:  "/nonexistent/geo.mmdb",
		Reputation: reputation.Files{Tor: "/nonexistent/tor.txt"},
	}, st, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	res, err := svc.EnrichLogin(context.Background(), enrich.Login{UserID: "h", IP: ipLondon, UserAgent: uaIPhone, At: t0})
	require.NoError(t, err)
	assert.Nil(t, res.Geo)
	assert.Equal(t, "iOS 17.4", res.OSName)
	assert.Equal(t, 100, res.Score)
	assert.Empty(t, res.Alerts, "no channels configured")
	assert.Contains(t, logs.String(), "geolocation database missing")
	assert.Contains(t, logs.String(), "ip reputation list missing")

	_, err = enrich.New(enrich.Config{}, nil, nil)
	assert.Error(t, err)
}

func TestRunStopsOnCancel(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	// A new Tor list is picked up by the running reloader.
	p := filepath.Join(f.dir, "tor.txt")
	require.NoError(t, os.WriteFile(p, []byte("8.8.4.4\n8.8.8.8\n1.1.1.1\n"), 0o644))
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	f.svc.Lists().Reload()
	v, err := f.svc.Geolocate(context.Background(), "8.8.8.8")
	require.NoError(t, err)
	assert.True(t, v.(*enrich.IPInfo).IsTor)
}
