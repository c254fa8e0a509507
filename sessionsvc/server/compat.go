package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/enrich/geoip"
	"github.com/meshsession/meshsession/sessionsvc/sessionview"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// GeoIPAdmin reports and reloads the GeoIP database (*geoip.DB).
type GeoIPAdmin interface {
	Info() geoip.Info
	Reload() bool
}

// geoIPSource is what an enricher offers to reach its database.
type geoIPSource interface{ GeoIP() *geoip.DB }

func (s *Server) geoIP() GeoIPAdmin {
	if s.cfg.GeoIP != nil {
		return s.cfg.GeoIP
	}
	for _, v := range []any{s.cfg.Geolocator, s.cfg.Enricher} {
		if src, ok := v.(geoIPSource); ok && src.GeoIP() != nil {
			return src.GeoIP()
		}
	}
	return nil
}

// compatRoutes are the Strapi plugin's admin routes that have no meaning
// of their own here: the licence (the plugin no longer gates anything)
// and the GeoIP download (sessionsvc reads a file it does not download).
func (s *Server) compatRoutes(a string) {
	s.handle("GET "+a+"/license/status", authAdmin, s.licenseStatus)
	s.handle("POST "+a+"/license/auto-create", authAdmin, s.licenseCreate)
	s.handle("POST "+a+"/license/create", authAdmin, s.licenseCreate)
	s.handle("POST "+a+"/license/ping", authAdmin, s.licensePing)
	s.handle("POST "+a+"/license/store-key", authAdmin, s.licenseStoreKey)
	s.handle("GET "+a+"/geoip/status", authAdmin, s.geoipStatus)
	s.handle("PUT "+a+"/geoip/credentials", authAdmin, s.geoipCredentials)
	s.handle("POST "+a+"/geoip/update", authAdmin, s.geoipUpdate)
	if s.cfg.DevRoutes {
		s.handle("POST "+a+"/sessions/{sessionId}/simulate-timeout", authAdmin, s.simulateTimeout)
	}
}

func allFeatures() map[string]bool {
	return map[string]bool{"premium": true, "advanced": true, "enterprise": true, "custom": true}
}

// licenseStatus answers as the plugin does without a key: valid, every
// feature on.
func (s *Server) licenseStatus(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "valid": true, "demo": false, "hasKey": false,
		"data":    map[string]any{"features": allFeatures()},
		"message": "Plugin is active. License key activation is optional.",
	})
	return nil
}

// licenseData is the free licence every licence route reports.
func licenseData() map[string]any {
	return map[string]any{"licenseKey": nil, "isActive": true, "isExpired": false, "expiresAt": nil,
		"features": allFeatures(), "maxDevices": nil, "type": "free-unlimited"}
}

func (s *Server) licenseCreate(w http.ResponseWriter, r *http.Request) error {
	var body map[string]any
	if err := readOptionalJSONLoose(r, &body); err != nil {
		return err
	}
	if strings.HasSuffix(r.URL.Path, "/license/create") {
		for _, f := range []string{"email", "firstName", "lastName"} {
			if v, _ := body[f].(string); strings.TrimSpace(v) == "" {
				return badRequest("Email, firstName, and lastName are required")
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true,
		"message": "No license needed: sessionsvc is free and unlimited", "data": licenseData()})
	return nil
}

func (s *Server) licensePing(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": "License refreshed successfully", "data": licenseData()})
	return nil
}

func (s *Server) licenseStoreKey(w http.ResponseWriter, r *http.Request) error {
	var body map[string]any
	if err := readOptionalJSONLoose(r, &body); err != nil {
		return err
	}
	if k, _ := body["licenseKey"].(string); strings.TrimSpace(k) == "" {
		return badRequest("License key is required")
	}
	// Nothing to verify or keep: the key unlocks nothing.
	writeJSON(w, http.StatusOK, map[string]any{"success": true,
		"message": "License key accepted (not needed: sessionsvc is free and unlimited)", "data": licenseData()})
	return nil
}

// readOptionalJSONLoose decodes an optional JSON object body, ignoring
// unknown keys (the licence and GeoIP bodies are free-form upstream).
func readOptionalJSONLoose(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !IsJSONType(ct) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if err.Error() == "EOF" {
			return nil
		}
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

// defaultEditionID is the plugin's edition when nothing names one
// (scripts/geoip-updater.cjs DEFAULT_EDITION_ID).
const defaultEditionID = "GeoLite2-City"

// editionFromPath is the plugin's inferEditionIdFromPath: the MaxMind
// edition a database file's name suggests, "" when it suggests none.
func editionFromPath(p string) string {
	base := strings.ToLower(filepath.Base(strings.TrimSpace(p)))
	if strings.TrimSpace(p) == "" {
		return ""
	}
	for _, ed := range []string{"GeoIP2-City", "GeoIP2-Country", "GeoLite2-City", "GeoLite2-Country"} {
		if strings.HasSuffix(base, strings.ToLower(ed)+".mmdb") {
			return ed
		}
	}
	switch {
	case strings.Contains(base, "city"):
		return "GeoLite2-City"
	case strings.Contains(base, "country"):
		return "GeoLite2-Country"
	}
	return ""
}

// editionID is the status's editionId: the loaded database's type (a
// MaxMind database names its edition there), else what the file name
// suggests, else the plugin's default. Always a string.
func editionID(info geoip.Info) string {
	if info.Loaded && info.DatabaseType != "" {
		return info.DatabaseType
	}
	if ed := editionFromPath(info.Path); ed != "" {
		return ed
	}
	return defaultEditionID
}

// httpDate formats t as MaxMind's Last-Modified header does (RFC 9110
// HTTP-date), "" for the zero time.
func httpDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(http.TimeFormat)
}

// geoipStatusBody is upstream's geoip status object (controllers/geoip.js
// getStatus) filled from our file: provider is the stored geoIpProvider
// setting; metadata, which upstream reads from the .metadata.json its
// downloader writes, is built from the loaded database (lastModified its
// build time, downloadedAt the file's modification time) or null while
// none is loaded. loaded and error are ours.
func (s *Server) geoipStatusBody(ctx context.Context) map[string]any {
	provider := s.Settings(ctx).GeoIPProvider
	if provider == "" {
		provider = "auto"
	}
	var info geoip.Info
	if g := s.geoIP(); g != nil {
		info = g.Info()
	}
	st := map[string]any{
		"provider": provider, "editionId": editionID(info), "databasePath": info.Path, "databaseDirectory": "",
		"exists": false, "metadata": nil, "hasCredentials": false, "credentialSource": "missing", "accountId": "",
		"loaded": info.Loaded,
	}
	var fi os.FileInfo
	if info.Path != "" {
		st["databaseDirectory"] = filepath.Dir(info.Path)
		if f, err := os.Stat(info.Path); err == nil && f.Mode().IsRegular() {
			fi = f
			st["exists"] = true
		}
	}
	if info.Loaded {
		md := map[string]any{
			"editionId": editionID(info), "sourceFile": filepath.Base(info.Path), "lastModified": httpDate(info.BuildTime),
			"downloadedAt": "", "sourceUrl": "", "loadedAt": info.LoadedAt.UTC().Format(time.RFC3339Nano),
		}
		if fi != nil {
			md["downloadedAt"] = fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		st["metadata"] = md
	}
	if info.Error != "" {
		st["error"] = info.Error
	}
	return st
}

func (s *Server) geoipStatus(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": s.geoipStatusBody(r.Context())})
	return nil
}

// geoipCredentials accepts upstream's body but keeps nothing: sessionsvc
// does not download databases (run geoipupdate next to it).
func (s *Server) geoipCredentials(w http.ResponseWriter, r *http.Request) error {
	var body map[string]any
	if err := readOptionalJSONLoose(r, &body); err != nil {
		return err
	}
	if c, _ := body["clear"].(bool); c {
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "hasCredentials": false})
		return nil
	}
	acc, _ := body["accountId"].(string)
	key, _ := body["licenseKey"].(string)
	if strings.TrimSpace(acc) == "" || strings.TrimSpace(key) == "" {
		return badRequest("MaxMind account ID and license key are required")
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "hasCredentials": false, "accountId": strings.TrimSpace(acc),
		"message": "sessionsvc does not download GeoIP databases: keep the file current with geoipupdate, then POST geoip/update"})
	return nil
}

// geoipUpdate reloads the database file now (it is also watched) and
// answers as upstream's updateDatabase (scripts/geoip-updater.cjs): changed
// when a new database is now in use, outputPath the file, lastModified its
// build time as an HTTP-date (upstream: MaxMind's Last-Modified), the
// plugin's message, and sourceFile (the file's name) when changed; loaded
// and editionId are ours. A file that cannot be loaded is a 400, as a
// failed download is upstream.
func (s *Server) geoipUpdate(w http.ResponseWriter, r *http.Request) error {
	g := s.geoIP()
	if g == nil || g.Info().Path == "" {
		return badRequest("No GeoIP database is configured (set GEOIP_DB to a MaxMind .mmdb file)")
	}
	reloaded := g.Reload()
	info := g.Info()
	changed := reloaded && info.Loaded
	s.log.Info("admin reloaded the GeoIP database", "admin", adminName(r), "changed", changed, "loaded", info.Loaded)
	if info.Error != "" {
		if info.Loaded {
			return badRequest("GeoIP database %s not reloaded (the previous one stays in use): %s", info.Path, info.Error)
		}
		return badRequest("GeoIP database %s could not be loaded: %s", info.Path, info.Error)
	}
	result := map[string]any{
		"changed": changed, "outputPath": info.Path, "lastModified": httpDate(info.BuildTime),
		"message": "GeoIP database is already current", "loaded": info.Loaded, "editionId": editionID(info),
	}
	if changed {
		result["message"] = "GeoIP database updated"
		result["sourceFile"] = filepath.Base(info.Path)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "result": result})
	return nil
}

// simulateTimeout ends a session as the idle timeout would (development
// only: the route exists when Config.DevRoutes is set).
func (s *Server) simulateTimeout(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("sessionId")
	sess, err := s.pathSession(r)
	if err != nil {
		return err
	}
	if _, err := s.endSessions(r.Context(), store.EndFilter{SessionIDs: []string{sess.ID}}, protocol.ReasonIdle, false, s.nowUTC()); err != nil {
		return err
	}
	s.log.Info("admin simulated a timeout", "admin", adminName(r), "session", sess.ID)
	writeJSON(w, http.StatusOK, map[string]any{"message": "Session " + id + " marked as timed out", "success": true})
	return nil
}

// geolocationJSON is upstream's IP info object (services/geolocation.js)
// built from ours: every key, "Unknown" where the database has nothing,
// riskLevel capitalised.
func geolocationJSON(ip string, data any) map[string]any {
	var in struct {
		IP            string   `json:"ip"`
		Country       string   `json:"country"`
		CountryCode   string   `json:"country_code"`
		City          string   `json:"city"`
		Region        string   `json:"region"`
		Timezone      string   `json:"timezone"`
		Latitude      *float64 `json:"latitude"`
		Longitude     *float64 `json:"longitude"`
		IsTor         bool     `json:"isTor"`
		IsVPN         bool     `json:"isVpn"`
		IsProxy       bool     `json:"isProxy"`
		IsThreat      bool     `json:"isThreat"`
		IsAnonymous   bool     `json:"isAnonymous"`
		IsPrivate     bool     `json:"isPrivate"`
		SecurityScore int      `json:"securityScore"`
		Located       bool     `json:"located"`
	}
	b, _ := json.Marshal(data)
	_ = json.Unmarshal(b, &in)
	if in.IP == "" {
		in.IP = ip
	}
	unknown := func(v string) string {
		if v == "" {
			return "Unknown"
		}
		return v
	}
	cc := in.CountryCode
	if cc == "" {
		cc = "XX"
	}
	status := "ok"
	switch {
	case in.IsPrivate:
		status = "private"
	case !in.Located:
		status = "unavailable"
	}
	// Upstream's getRiskLevel: from the flags, not the score.
	risk := "Low"
	switch {
	case in.IsPrivate:
		risk = "None"
	case in.IsThreat:
		risk = "High"
	case in.IsVPN && in.IsProxy:
		risk = "Medium-High"
	case in.IsVPN || in.IsProxy:
		risk = "Medium"
	}
	country, city, region, flag := unknown(in.Country), unknown(in.City), unknown(in.Region), sessionview.Flag(in.CountryCode)
	score := in.SecurityScore
	switch status {
	case "private": // upstream's placeholders for a local address
		country, city, region, flag = "Local Network", "Localhost", "Private Network", "🏠"
	case "unavailable": // upstream's getFallbackData
		flag, score, risk = "[GEO]", 50, "Unknown"
	}
	return map[string]any{
		"ip": in.IP, "country": country, "country_code": cc, "country_flag": flag,
		"city": city, "region": region, "timezone": unknown(in.Timezone),
		"latitude": in.Latitude, "longitude": in.Longitude, "postal": nil, "org": nil, "asn": nil,
		"isVpn": in.IsVPN, "isProxy": in.IsProxy, "isThreat": in.IsThreat, "isAnonymous": in.IsAnonymous, "isTor": in.IsTor,
		"securityScore": score, "riskLevel": risk,
		"_status": status, "_source": "local-mmdb",
	}
}
