package geoip_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

func cityDB(t *testing.T) (string, *geoip.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	require.NoError(t, geoiptest.Write(path, geoiptest.City, geoiptest.Samples))
	db := geoip.Open(path, nil)
	require.True(t, db.Loaded())
	return path, db
}

func TestLookupCity(t *testing.T) {
	_, db := cityDB(t)
	ctx := context.Background()

	g, err := db.Lookup(ctx, "81.2.69.142")
	require.NoError(t, err)
	assert.Equal(t, &store.GeoLocation{
		Country: "United Kingdom", CountryCode: "GB", City: "London", Region: "England",
		Latitude: 51.5142, Longitude: -0.0931, Timezone: "Europe/London",
	}, g)

	g, err = db.Lookup(ctx, "2001:db8:2::99")
	require.NoError(t, err)
	assert.Equal(t, "JP", g.CountryCode)
	assert.Equal(t, "Asia/Tokyo", g.Timezone)

	// IPv6-mapped IPv4 is unmapped before the lookup.
	g, err = db.Lookup(ctx, "::ffff:85.214.1.2")
	require.NoError(t, err)
	assert.Equal(t, "Berlin", g.City)

	// Bracketed and with spaces, as some proxies send it.
	g, err = db.Lookup(ctx, " [2001:db8:1::5] ")
	require.NoError(t, err)
	assert.Equal(t, "New York", g.City)
}

func TestLookupCountryDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "country.mmdb")
	require.NoError(t, geoiptest.Write(path, geoiptest.Country, geoiptest.Samples))
	db := geoip.Open(path, nil)
	g, err := db.Lookup(context.Background(), "1.130.0.1")
	require.NoError(t, err)
	assert.Equal(t, &store.GeoLocation{Country: "Australia", CountryCode: "AU"}, g)
	assert.False(t, geoip.HasCoordinates(g))
	assert.Equal(t, "GeoLite2-Country", db.Info().DatabaseType)
}

func TestLookupBadAndPrivate(t *testing.T) {
	_, db := cityDB(t)
	ctx := context.Background()
	for _, ip := range []string{"10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "fe80::1%eth0", "fd00::1", "::ffff:10.0.0.1", "100.64.1.1", "0.0.0.0", "::"} {
		g, err := db.Lookup(ctx, ip)
		require.NoError(t, err, ip)
		assert.Equal(t, geoip.PrivateNetwork, g.Country, ip)
		assert.Empty(t, g.CountryCode, ip)
	}
	for _, ip := range []string{"", "not-an-ip", "999.1.1.1", "1.2.3", "::gg", string(make([]byte, 1000))} {
		_, err := db.Lookup(ctx, ip)
		assert.ErrorIs(t, err, geoip.ErrInvalidIP, "%q", ip)
	}
	_, err := db.Lookup(ctx, "8.8.8.8")
	assert.ErrorIs(t, err, geoip.ErrNotFound)
	assert.ErrorIs(t, err, store.ErrNotFound, "maps to 404 in the API")
}

func TestMissingAndCorruptFile(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	db := geoip.Open(filepath.Join(dir, "nope.mmdb"), logger)
	assert.False(t, db.Loaded())
	assert.Contains(t, logs.String(), "geolocation database missing")
	_, err := db.Lookup(context.Background(), "81.2.69.142")
	assert.ErrorIs(t, err, geoip.ErrUnavailable)
	g, err := db.Lookup(context.Background(), "10.0.0.1")
	require.NoError(t, err, "private addresses need no database")
	assert.Equal(t, geoip.PrivateNetwork, g.Country)

	for name, content := range map[string][]byte{
		"empty":   {},
		"garbage": bytes.Repeat([]byte("not a maxmind database "), 100),
		"marker":  append(bytes.Repeat([]byte{0xff}, 64), []byte("\xab\xcd\xefMaxMind.com\xe0")...),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".mmdb")
			require.NoError(t, os.WriteFile(p, content, 0o644))
			logs.Reset()
			db := geoip.Open(p, logger)
			assert.False(t, db.Loaded())
			assert.Contains(t, logs.String(), "geolocation database unusable")
			assert.NotEmpty(t, db.Info().Error)
		})
	}

	// Truncated real database.
	good := filepath.Join(dir, "good.mmdb")
	require.NoError(t, geoiptest.Write(good, geoiptest.City, geoiptest.Samples))
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	trunc := filepath.Join(dir, "trunc.mmdb")
	require.NoError(t, os.WriteFile(trunc, b[:len(b)/2], 0o644))
	assert.False(t, geoip.Open(trunc, logger).Loaded())

	// No path: off, quietly.
	off := geoip.Open("", nil)
	assert.False(t, off.Loaded())
	assert.False(t, off.Reload())
}

func TestReloadOnChange(t *testing.T) {
	path, db := cityDB(t)
	ctx := context.Background()
	g, err := db.Lookup(ctx, "81.2.69.1")
	require.NoError(t, err)
	assert.Equal(t, "London", g.City)
	assert.False(t, db.Reload(), "unchanged file is not reloaded")

	// London's network moves to Paris.
	paris := geoiptest.London
	paris.CountryCode, paris.Country, paris.City, paris.TimeZone = "FR", "France", "Paris", "Europe/Paris"
	require.NoError(t, geoiptest.Write(path, geoiptest.City, []geoiptest.Place{paris}))
	future := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, future, future))
	require.True(t, db.Reload())
	g, err = db.Lookup(ctx, "81.2.69.1")
	require.NoError(t, err)
	assert.Equal(t, "Paris", g.City)

	// A corrupt replacement keeps the previous database.
	require.NoError(t, os.WriteFile(path, []byte("broken"), 0o644))
	assert.False(t, db.Reload())
	g, err = db.Lookup(ctx, "81.2.69.1")
	require.NoError(t, err)
	assert.Equal(t, "Paris", g.City)

	// Removed: off.
	require.NoError(t, os.Remove(path))
	assert.True(t, db.Reload())
	_, err = db.Lookup(ctx, "81.2.69.1")
	assert.ErrorIs(t, err, geoip.ErrUnavailable)

	// Back again.
	require.NoError(t, geoiptest.Write(path, geoiptest.City, geoiptest.Samples))
	assert.True(t, db.Reload())
	g, err = db.Lookup(ctx, "81.2.69.1")
	require.NoError(t, err)
	assert.Equal(t, "London", g.City)
}

func TestRunReloadsInBackground(t *testing.T) {
	path, db := cityDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { db.Run(ctx, 10*time.Millisecond); close(done) }()

	paris := geoiptest.London
	paris.City = "Paris"
	require.NoError(t, geoiptest.Write(path, geoiptest.City, []geoiptest.Place{paris, geoiptest.Berlin}))
	future := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, future, future))
	require.Eventually(t, func() bool {
		g, err := db.Lookup(ctx, "81.2.69.1")
		return err == nil && g.City == "Paris"
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
}

func TestParseIP(t *testing.T) {
	a, err := geoip.ParseIP("::ffff:1.2.3.4")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("1.2.3.4"), a)
	_, err = geoip.ParseIP("1.2.3.4:80")
	assert.True(t, errors.Is(err, geoip.ErrInvalidIP))
}

func BenchmarkLookup(b *testing.B) {
	path := filepath.Join(b.TempDir(), "city.mmdb")
	require.NoError(b, geoiptest.Write(path, geoiptest.City, geoiptest.Samples))
	db := geoip.Open(path, nil)
	a := netip.MustParseAddr("81.2.69.142")
	for b.Loop() {
		if _, err := db.Locate(a); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzOpenBytes(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.mmdb")
	require.NoError(f, geoiptest.Write(good, geoiptest.City, geoiptest.Samples))
	b, err := os.ReadFile(good)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.mmdb")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		db := geoip.Open(p, nil)
		for _, ip := range []string{"81.2.69.142", "85.214.1.1", "2001:db8:1::1", "1.130.0.1"} {
			_, _ = db.Lookup(context.Background(), ip)
		}
	})
}
