package server

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip/geoiptest"
)

// Upstream's geoip status (controllers/geoip.js getStatus) and the
// metadata its downloader writes (scripts/geoip-updater.cjs).
var (
	geoipStatusShape = shape{"success": "bool", "status.provider": "string", "status.editionId": "string",
		"status.databasePath": "string", "status.databaseDirectory": "string", "status.exists": "bool",
		"status.metadata": "object|null", "status.hasCredentials": "bool", "status.credentialSource": "string",
		"status.accountId": "string"}
	geoipMetadataShape = shape{"editionId": "string", "sourceFile": "string", "lastModified": "string",
		"downloadedAt": "string", "sourceUrl": "string"}
	// geoipResultShape is updateGeoIpDatabase's answer; sourceFile only when changed.
	geoipResultShape = shape{"success": "bool", "result.changed": "bool", "result.outputPath": "string",
		"result.lastModified": "string", "result.message": "string"}
)

// geoipEnv is a server whose GeoIP database is the file at path (written
// as a City database first when write is set).
func geoipEnv(t *testing.T, path string, write bool) (*env, *geoip.DB) {
	t.Helper()
	if write {
		require.NoError(t, geoiptest.Write(path, geoiptest.City, geoiptest.Samples))
	}
	db := geoip.Open(path, nil)
	return newEnv(t, func(c *Config) { c.GeoIP = db }), db
}

func TestGeoIPStatusAsUpstream(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		path     string // "" = no GEOIP_DB
		write    bool
		provider string // stored geoIpProvider ("" = never saved)
		check    func(t *testing.T, st map[string]any)
	}{
		{name: "no database configured", check: func(t *testing.T, st map[string]any) {
			assert.Equal(t, "auto", st["provider"], "the setting's default")
			assert.Equal(t, "GeoLite2-City", st["editionId"], "upstream's default edition")
			assert.Equal(t, "", st["databasePath"])
			assert.Equal(t, false, st["exists"])
			assert.Nil(t, st["metadata"])
		}},
		{name: "stored provider", provider: "local-mmdb", check: func(t *testing.T, st map[string]any) {
			assert.Equal(t, "local-mmdb", st["provider"])
		}},
		{name: "file missing: edition from its name", path: filepath.Join(dir, "GeoIP2-Country.mmdb"), check: func(t *testing.T, st map[string]any) {
			assert.Equal(t, "GeoIP2-Country", st["editionId"])
			assert.Equal(t, filepath.Join(dir, "GeoIP2-Country.mmdb"), st["databasePath"])
			assert.Equal(t, dir, st["databaseDirectory"])
			assert.Equal(t, false, st["exists"])
			assert.Nil(t, st["metadata"])
			assert.NotEmpty(t, st["error"])
		}},
		{name: "loaded", path: filepath.Join(dir, "geo.mmdb"), write: true, check: func(t *testing.T, st map[string]any) {
			assert.Equal(t, "GeoLite2-City", st["editionId"], "the database's own type")
			assert.Equal(t, true, st["exists"])
			assert.Equal(t, dir, st["databaseDirectory"])
			geoipMetadataShape.check(t, st["metadata"], "")
			md := st["metadata"].(map[string]any)
			assert.Equal(t, "GeoLite2-City", md["editionId"])
			assert.Equal(t, "geo.mmdb", md["sourceFile"])
			built, err := http.ParseTime(md["lastModified"].(string))
			require.NoError(t, err, "lastModified is an HTTP-date, as MaxMind's Last-Modified")
			assert.WithinDuration(t, time.Now(), built, time.Hour, "the build time")
			fi, err := os.Stat(filepath.Join(dir, "geo.mmdb"))
			require.NoError(t, err)
			downloaded, err := time.Parse(time.RFC3339Nano, md["downloadedAt"].(string))
			require.NoError(t, err)
			assert.True(t, fi.ModTime().Equal(downloaded), "the file's modification time")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			if tc.path == "" {
				e = newEnv(t)
			} else {
				e, _ = geoipEnv(t, tc.path, tc.write)
			}
			if tc.provider != "" {
				r := e.admin("PUT", aa+"/settings", `{"geoIpProvider":"`+tc.provider+`"}`)
				require.Equal(t, 200, r.status, string(r.raw))
			}
			r := e.admin("GET", aa+"/geoip/status", nil)
			docSampler(t, e).check("GET "+aa+"/geoip/status", r, 200)
			geoipStatusShape.check(t, r.body, "")
			tc.check(t, r.body["status"].(map[string]any))
		})
	}
}

func TestGeoIPUpdateAsUpstream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	e, _ := geoipEnv(t, path, true)
	touch := func(t *testing.T) {
		later := time.Now().Add(time.Minute)
		require.NoError(t, os.Chtimes(path, later, later))
	}
	for _, tc := range []struct {
		name    string
		before  func(t *testing.T)
		status  int
		changed bool
		message string
	}{
		{name: "unchanged file", status: 200, message: "GeoIP database is already current"},
		{name: "new file", status: 200, changed: true, message: "GeoIP database updated", before: func(t *testing.T) {
			require.NoError(t, geoiptest.Write(path, geoiptest.City, geoiptest.Samples[:2]))
			touch(t)
		}},
		{name: "same file again", status: 200, message: "GeoIP database is already current"},
		{name: "corrupt file: the old database stays, the update fails", status: 400, before: func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte("not a database"), 0o644))
			touch(t)
		}},
		{name: "file removed", status: 400, before: func(t *testing.T) { require.NoError(t, os.Remove(path)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			r := e.admin("POST", aa+"/geoip/update", `{"force":false}`)
			docSampler(t, e).check("POST "+aa+"/geoip/update", r, tc.status)
			if tc.status != 200 {
				errorShape.check(t, r.body, "")
				return
			}
			geoipResultShape.check(t, r.body, "")
			res := r.body["result"].(map[string]any)
			assert.Equal(t, tc.changed, res["changed"])
			assert.Equal(t, tc.message, res["message"])
			assert.Equal(t, path, res["outputPath"])
			_, err := http.ParseTime(res["lastModified"].(string))
			assert.NoError(t, err, "lastModified is an HTTP-date")
			if tc.changed {
				assert.Equal(t, "GeoLite2-City.mmdb", res["sourceFile"])
			} else {
				assert.NotContains(t, res, "sourceFile", "upstream sends sourceFile only with a new database")
			}
		})
	}
}

// docSampler checks answers against the OpenAPI document e serves.
func docSampler(t *testing.T, e *env) *sampler {
	doc := openAPIDoc(t, e)
	return &sampler{t: t, doc: doc, ops: operations(doc), seen: map[string]bool{}}
}

func TestEditionFromPath(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", ""},
		{"/data/GeoLite2-City.mmdb", "GeoLite2-City"},
		{"/data/geolite2-country.MMDB", "GeoLite2-Country"},
		{"/data/GeoIP2-City.mmdb", "GeoIP2-City"},
		{"GeoIP2-Country.mmdb", "GeoIP2-Country"},
		{"/data/dbip-city-lite.mmdb", "GeoLite2-City"},
		{"/data/my-country-db.mmdb", "GeoLite2-Country"},
		{"/data/asn.mmdb", ""},
	} {
		assert.Equal(t, tc.want, editionFromPath(tc.path), tc.path)
	}
}
