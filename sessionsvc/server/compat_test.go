package server

// Contract tests against the Strapi plugin magic-sessionmanager 4.7.2
// (Schero94/Magic-Sessionmanager, commit 51437dcab3746aa5376d4802ec02c767f7d11a58):
// one case per route and answer, with the status, the field names and JSON
// types, the envelope and the headers its controllers produce
// (server/src/controllers/session.js, settings.js, license.js, geoip.js,
// middlewares/rate-limit.js, middlewares/session-rejection-headers.js).
// Fields we add are not checked; fields upstream has must be there with
// upstream's type. The README's compatibility table lists the deliberate
// differences.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
)

// Upstream's session object (utils/enhance-session.js over
// content-types/session/schema.json, token fields stripped).
var sessionShape = shape{
	"id": "string", "documentId": "string", "sessionId": "string", "ipAddress": "string", "userAgent": "string",
	"loginTime": "string", "lastActive": "string", "logoutTime": "string|null", "isActive": "bool",
	"terminatedManually": "bool", "terminationReason": "string|null", "geoLocation": "object|null",
	"securityScore": "number|null", "deviceType": "string", "browserName": "string", "osName": "string",
	"createdAt": "string", "updatedAt": "string", "isTrulyActive": "bool", "minutesSinceActive": "number",
}

var geoShape = shape{"country": "string|null", "country_code": "string|null", "country_flag": "string|null",
	"city": "string|null", "region": "string|null", "timezone": "string|null"}

var userShape = shape{"id": "number|string", "documentId": "string|null", "email": "string|null", "username": "string|null"}

// errorShape is Strapi's error envelope; details is always an object.
var errorShape = shape{"data": "null", "error": "object", "error.status": "number", "error.name": "string",
	"error.message": "string", "error.details": "object"}

// shape maps a dotted path ("data.0.id", "meta.count") to a JSON type
// ("string", "number", "bool", "null", "object", "array"; "a|b" for either).
type shape map[string]string

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

func lookup(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func (s shape) check(t *testing.T, v any, prefix string) {
	t.Helper()
	for path, want := range s {
		full := path
		if prefix != "" {
			full = prefix + "." + path
		}
		got, ok := lookup(v, full)
		if !assert.True(t, ok, "field %s is missing", full) {
			continue
		}
		assert.Contains(t, strings.Split(want, "|"), jsonType(got), "field %s: want %s, got %v", full, want, got)
	}
}

type compatCase struct {
	name   string
	do     func(t *testing.T, e *env, f *fixture) resp
	status int
	fields shape
	// sessions: paths of session objects (checked against sessionShape,
	// their geoLocation against geoShape when set).
	sessions []string
	users    []string // paths of user relations
	header   map[string]string
	check    func(t *testing.T, r resp, e *env, f *fixture)
}

// fixture is the data the cases work on: alice has two sessions (a1 with
// its token, a2), bob one, carol none known.
type fixture struct {
	aliceTok, alice2Tok, bobTok string
	a1, a2, b1                  string
}

func newFixture(t *testing.T, e *env) *fixture {
	f := &fixture{aliceTok: token(t, "7", "sid-a1", nil), alice2Tok: token(t, "7", "sid-a2", nil), bobTok: token(t, "8", "sid-b1", nil)}
	f.a1 = e.loginNamed("7", f.aliceTok, userDocID, "alice", "alice@example.com")
	f.a2 = e.loginNamed("7", f.alice2Tok, userDocID, "alice", "alice@example.com")
	f.b1 = e.login("8", f.bobTok, "")
	return f
}

const (
	ua = "/api/magic-sessionmanager"
	aa = "/magic-sessionmanager"
)

// upstreamUIBody is what the plugin's Settings page PUTs
// (admin/src/pages/Settings.jsx, its initial state with edits).
const upstreamUIBody = `{"inactivityTimeout":"30","cleanupInterval":30,"lastSeenRateLimit":30,"retentionDays":90,"maxSessionAgeDays":30,
"sessionCreationGraceMs":5000,"cleanupUseDbDirect":false,"strictSessionEnforcement":true,"trustedProxies":false,
"enableGeolocation":true,"enableSecurityScoring":true,"blockSuspiciousSessions":false,"maxFailedLogins":5,
"enableEmailAlerts":false,"alertOnSuspiciousLogin":true,"alertOnNewLocation":true,"alertOnVpnProxy":true,
"enableWebhooks":true,"discordWebhookUrl":"https://discord.com/api/webhooks/1/x","slackWebhookUrl":"http://hooks.slack.com/x",
"enableGeofencing":false,"allowedCountries":[],"blockedCountries":["de","XX1"],"geoIpProvider":"auto","geoIpDatabasePath":"",
"geoLookupFailureMode":"auto","emailTemplates":{"suspiciousLogin":{"subject":"","html":"","text":""},
"newLocation":{"subject":"","html":"","text":""},"vpnProxy":{"subject":"","html":"","text":""}},"somethingNew":1}`

func compatCases() []compatCase {
	okMsg := shape{"message": "string", "success": "bool"}
	return []compatCase{
		// ---- user API (routes/content-api.js) ----
		{name: "my-sessions", status: 200,
			do:       aliceCalls("GET", ua+"/my-sessions"),
			fields:   shape{"data": "array", "meta.count": "number", "meta.active": "number", "meta.hasMore": "bool", "meta.limit": "number", "data.0.isCurrentSession": "bool"},
			sessions: []string{"data.0", "data.1"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, f.a1, r.body["data"].([]any)[0].(map[string]any)["id"], "current session first")
				assert.Equal(t, true, r.body["data"].([]any)[0].(map[string]any)["isCurrentSession"])
				assert.EqualValues(t, 200, r.body["meta"].(map[string]any)["limit"])
			}},
		{name: "current-session", status: 200,
			do:       aliceCalls("GET", ua+"/current-session"),
			fields:   shape{"data.isCurrentSession": "bool"},
			sessions: []string{"data"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, "sid-a1", r.body["data"].(map[string]any)["sessionId"], "sessionId: the id the app sees")
			}},
		{name: "current-session pending in the grace window", status: 202,
			do: func(t *testing.T, e *env, f *fixture) resp {
				return e.user(token(t, "7", "sid-new", nil), "GET", ua+"/current-session", nil)
			},
			fields: shape{"data": "null", "meta.pending": "bool", "meta.retryAfterMs": "number", "message": "string"}},
		{name: "current-session pending when issued ahead of this clock", status: 202,
			do: func(t *testing.T, e *env, f *fixture) resp {
				return e.user(token(t, "7", "sid-skew", jwt.MapClaims{"iat": time.Now().Add(30 * time.Second).Unix()}), "GET", ua+"/current-session", nil)
			},
			fields: shape{"data": "null", "meta.pending": "bool", "meta.retryAfterMs": "number", "message": "string"}},
		{name: "current-session unknown after the grace window", status: 404,
			do: func(t *testing.T, e *env, f *fixture) resp {
				return e.user(token(t, "7", "sid-old", jwt.MapClaims{"iat": time.Now().Add(-time.Minute).Unix()}), "GET", ua+"/current-session", nil)
			},
			fields: errorShape},
		{name: "user/{userId}/sessions own", status: 200,
			do:       aliceCalls("GET", ua+"/user/7/sessions"),
			fields:   shape{"data": "array", "meta.count": "number"},
			sessions: []string{"data.0"}},
		{name: "user/{userId}/sessions by documentId", status: 200,
			do:     aliceCalls("GET", ua+"/user/"+userDocID+"/sessions"),
			fields: shape{"data": "array", "meta.count": "number"}},
		{name: "user/{userId}/sessions other user", status: 403,
			do:     aliceCalls("GET", ua+"/user/8/sessions"),
			fields: errorShape},
		{name: "DELETE my-sessions/{id}", status: 200,
			do:     aliceCalls("DELETE", ua+"/my-sessions/{a2}"),
			fields: shape{"message": "string", "success": "bool", "alreadyTerminated": "bool"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, false, r.body["alreadyTerminated"])
				s, err := e.st.GetSession(t.Context(), f.a2)
				require.NoError(t, err)
				assert.Equal(t, "manual", s.TerminationReason)
				again := e.user(f.aliceTok, "DELETE", ua+"/my-sessions/"+f.a2, nil)
				assert.Equal(t, 200, again.status)
				assert.Equal(t, true, again.body["alreadyTerminated"])
				ended := e.user(f.alice2Tok, "GET", ua+"/my-sessions", nil)
				assert.Equal(t, 401, ended.status)
				assert.Equal(t, "manual", ended.header.Get("X-Session-Terminated-Reason"))
				assert.Equal(t, "Your session was terminated. Please log in again.", ended.body["error"].(map[string]any)["message"])
			}},
		{name: "DELETE my-sessions/{x-session-id}", status: 200,
			do:     aliceCalls("DELETE", ua+"/my-sessions/sid-a2"),
			fields: shape{"alreadyTerminated": "bool"}},
		{name: "DELETE my-sessions/{unknown}", status: 404,
			do:     aliceCalls("DELETE", ua+"/my-sessions/abc123"),
			fields: errorShape},
		{name: "DELETE my-sessions/{other user's}", status: 403,
			do:     aliceCalls("DELETE", ua+"/my-sessions/{b1}"),
			fields: errorShape},
		{name: "DELETE my-sessions/{current}", status: 400,
			do:     aliceCalls("DELETE", ua+"/my-sessions/{a1}"),
			fields: errorShape},
		{name: "logout", status: 200,
			do:     aliceCalls("POST", ua+"/logout"),
			fields: shape{"message": "string", "terminated": "bool"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, true, r.body["terminated"])
				assert.Equal(t, "Logged out successfully", r.body["message"])
			}},
		{name: "logout-all", status: 200,
			do:     aliceCalls("POST", ua+"/logout-all"),
			fields: shape{"message": "string", "terminatedCount": "number"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.EqualValues(t, 2, r.body["terminatedCount"])
			}},
		{name: "logout-others", status: 200,
			do:     aliceCalls("POST", ua+"/logout-others"),
			fields: shape{"message": "string", "terminatedCount": "number", "currentSessionPreserved": "bool"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, "1 other session(s) terminated", r.body["message"])
			}},
		{name: "logout-others without a known session", status: 200,
			do: func(t *testing.T, e *env, f *fixture) resp {
				return e.user(token(t, "7", "sid-unknown", nil), "POST", ua+"/logout-others", nil)
			},
			fields: shape{"message": "string", "terminatedCount": "number", "fellBackToLogoutAll": "bool"}},
		{name: "no token", status: 401,
			do:     func(t *testing.T, e *env, f *fixture) resp { return e.do("GET", ua+"/my-sessions", nil, nil) },
			fields: errorShape},
		{name: "token cookie", status: 200,
			do: func(t *testing.T, e *env, f *fixture) resp {
				return e.do("GET", ua+"/my-sessions", nil, map[string]string{"Cookie": "jwt=" + f.aliceTok})
			},
			fields: shape{"data": "array"}},
		{name: "token cookie refused cross-site on writes", status: 403,
			do: func(t *testing.T, e *env, f *fixture) resp {
				return e.do("POST", ua+"/logout-all", nil, map[string]string{"Cookie": "jwt=" + f.aliceTok, "Origin": "https://evil.example"})
			},
			fields: errorShape,
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				s, err := e.st.GetSession(t.Context(), f.a1)
				require.NoError(t, err)
				assert.True(t, s.Active, "nothing ended")
				same := e.do("POST", ua+"/logout-others", nil, map[string]string{"Cookie": "jwt=" + f.aliceTok, "Sec-Fetch-Site": "same-origin"})
				assert.Equal(t, 200, same.status, "same-site cookie writes work")
			}},
		{name: "blocked user", status: 401,
			do: func(t *testing.T, e *env, f *fixture) resp {
				require.NoError(t, e.st.SetBlocked(t.Context(), "8", true, time.Now()))
				return e.user(f.bobTok, "GET", ua+"/my-sessions", nil)
			},
			fields: errorShape, header: map[string]string{"X-Session-Terminated-Reason": "blocked"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, "blocked", r.body["error"].(map[string]any)["details"].(map[string]any)["reason"])
				assert.Equal(t, "Your account has been blocked. Contact support.", r.body["error"].(map[string]any)["message"])
			}},
		{name: "write rate limit", status: 429,
			do: func(t *testing.T, e *env, f *fixture) resp {
				tok := token(t, "9", "", nil)
				for i := 0; i < 10; i++ {
					require.Equal(t, 200, e.user(tok, "POST", ua+"/logout-all", nil).status, "write %d", i+1)
				}
				return e.user(tok, "POST", ua+"/logout-all", nil)
			},
			fields: shape{"data": "null", "error.status": "number", "error.name": "string", "error.message": "string", "error.details.retryAfter": "number"},
			header: map[string]string{"Retry-After": "60"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				assert.Equal(t, "TooManyRequestsError", r.body["error"].(map[string]any)["name"])
			}},
		{name: "read rate limit", status: 429,
			do: func(t *testing.T, e *env, f *fixture) resp {
				for i := 0; i < 120; i++ {
					require.Equal(t, 200, e.user(f.aliceTok, "GET", ua+"/my-sessions", nil).status, "read %d", i+1)
				}
				return e.user(f.aliceTok, "GET", ua+"/my-sessions", nil)
			},
			fields: errorShape},

		// ---- admin API (routes/admin.js) ----
		{name: "admin sessions", status: 200,
			do:       adminCalls("GET", aa+"/sessions", nil),
			fields:   shape{"data": "array", "meta.count": "number", "meta.active": "number", "meta.inactive": "number"},
			sessions: []string{"data.0", "data.1", "data.2"}, users: []string{"data.0.user"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				for _, d := range r.body["data"].([]any) {
					u := d.(map[string]any)["user"].(map[string]any)
					switch u["id"] {
					case float64(7): // a numeric user id is a number, as Strapi's
						assert.Equal(t, "alice", u["username"])
						assert.Equal(t, "alice@example.com", u["email"])
						assert.Equal(t, userDocID, u["documentId"])
					case float64(8):
						assert.Nil(t, u["username"], "not named at login")
					default:
						t.Errorf("user id %v", u["id"])
					}
				}
				raw, err := e.st.GetSession(t.Context(), f.a1)
				require.NoError(t, err)
				assert.NotContains(t, raw.Username+raw.UserEmail+raw.UserDocumentID+raw.UserLookup, "alice", "sealed at rest")
				found := e.admin("GET", aa+"/sessions?search=Alice@Example.com", nil)
				assert.ElementsMatch(t, []string{f.a1, f.a2}, ids(found), "an exact email finds the user's sessions")
			}},
		{name: "admin sessions/active", status: 200,
			do:       adminCalls("GET", aa+"/sessions/active", nil),
			fields:   shape{"data": "array", "meta.count": "number"},
			sessions: []string{"data.0"}},
		{name: "admin user/{userId}/sessions", status: 200,
			do:     adminCalls("GET", aa+"/user/7/sessions", nil),
			fields: shape{"data": "array", "meta.count": "number"}, sessions: []string{"data.0"},
			check: func(t *testing.T, r resp, e *env, f *fixture) { assert.Len(t, r.body["data"], 2) }},
		{name: "admin user/{documentId}/sessions", status: 200,
			do:     adminCalls("GET", aa+"/user/"+userDocID+"/sessions", nil),
			fields: shape{"data": "array", "meta.count": "number"},
			check:  func(t *testing.T, r resp, e *env, f *fixture) { assert.Len(t, r.body["data"], 2) }},
		{name: "admin terminate", status: 200,
			do:     adminCalls("POST", aa+"/sessions/{a2}/terminate", nil),
			fields: okMsg},
		{name: "admin terminate by sessionId", status: 200,
			do: adminCalls("POST", aa+"/sessions/sid-a2/terminate", nil),
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				s, err := e.st.GetSession(t.Context(), f.a2)
				require.NoError(t, err)
				assert.False(t, s.Active)
			}},
		{name: "admin terminate unknown", status: 200,
			do:     adminCalls("POST", aa+"/sessions/nope/terminate", nil),
			fields: okMsg},
		{name: "admin delete", status: 200,
			do:     adminCalls("DELETE", aa+"/sessions/{a2}", nil),
			fields: okMsg},
		{name: "admin clean-inactive", status: 200,
			do:     adminCalls("POST", aa+"/sessions/clean-inactive", nil),
			fields: shape{"message": "string", "success": "bool", "deletedCount": "number"}},
		{name: "admin terminate-all", status: 200,
			do:     adminCalls("POST", aa+"/user/7/terminate-all", nil),
			fields: okMsg},
		{name: "admin toggle-block", status: 200,
			do:     adminCalls("POST", aa+"/user/8/toggle-block", nil),
			fields: shape{"message": "string", "blocked": "bool", "success": "bool"}},
		{name: "admin toggle-block unknown user", status: 404,
			do:     adminCalls("POST", aa+"/user/404/toggle-block", nil),
			fields: errorShape,
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				ahead := e.admin("POST", aa+"/user/404/toggle-block", `{"blocked":true}`)
				assert.Equal(t, 200, ahead.status, "ours: an explicit set blocks ahead of a first login")
				blocked, err := e.st.IsBlocked(t.Context(), "404")
				require.NoError(t, err)
				assert.True(t, blocked)
			}},
		{name: "admin settings get", status: 200,
			do: adminCalls("GET", aa+"/settings", nil),
			fields: settingsShape("settings").with(shape{"success": "bool",
				"settings.emailTemplates.suspiciousLogin.subject": "string", "settings.emailTemplates.newLocation.html": "string",
				"settings.emailTemplates.vpnProxy.text": "string"}),
		},
		{name: "admin settings put (the plugin UI's body)", status: 200,
			do:     adminCalls("PUT", aa+"/settings", upstreamUIBody),
			fields: settingsShape("settings").with(shape{"success": "bool", "message": "string"}),
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				st := r.body["settings"].(map[string]any)
				assert.EqualValues(t, 30, st["inactivityTimeout"], `"30" read as 30`)
				assert.Equal(t, "", st["slackWebhookUrl"], "http webhook dropped")
				assert.Equal(t, "********", st["discordWebhookUrl"], "https Discord webhook kept (masked)")
				assert.Equal(t, []any{"DE"}, st["blockedCountries"])
				assert.Equal(t, []any{"somethingNew"}, r.body["meta"].(map[string]any)["ignored"], "unknown keys ignored and reported")
				for _, k := range []string{"trustedProxies", "cleanupInterval", "lastSeenRateLimit", "maxSessionAgeDays", "retentionDays"} {
					assert.Contains(t, r.body["meta"].(map[string]any)["noEffect"], k, "accepted settings without effect are reported")
				}
				big := e.admin("PUT", aa+"/settings", `{"inactivityTimeout":99999}`)
				assert.EqualValues(t, 1440, big.body["settings"].(map[string]any)["inactivityTimeout"], "clamped")
				assert.Equal(t, false, big.body["settings"].(map[string]any)["enableGeolocation"], "replaced, not merged")
			}},
		{name: "admin settings put without a body", status: 400,
			do:     adminCalls("PUT", aa+"/settings", nil),
			fields: errorShape},
		{name: "admin geolocation", status: 200,
			do: adminCalls("GET", aa+"/geolocation/8.8.8.8", nil),
			fields: shape{"success": "bool", "data.ip": "string", "data.country": "string", "data.country_code": "string",
				"data.country_flag": "string", "data.city": "string", "data.region": "string", "data.timezone": "string",
				"data.latitude": "number|null", "data.longitude": "number|null", "data.isVpn": "bool", "data.isProxy": "bool",
				"data.isThreat": "bool", "data.isAnonymous": "bool", "data.isTor": "bool", "data.securityScore": "number", "data.riskLevel": "string"},
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				// The test's locator says nothing of "located": upstream's
				// fallback (getFallbackData) scores.
				d := r.body["data"].(map[string]any)
				assert.Equal(t, "Unknown", d["riskLevel"])
				assert.EqualValues(t, 50, d["securityScore"])
			}},
		{name: "admin geolocation bad ip", status: 400,
			do:     adminCalls("GET", aa+"/geolocation/1.2.3.999", nil),
			fields: errorShape},
		{name: "license/status", status: 200,
			do: adminCalls("GET", aa+"/license/status", nil),
			fields: shape{"success": "bool", "valid": "bool", "demo": "bool", "hasKey": "bool", "data.features.premium": "bool",
				"data.features.advanced": "bool", "data.features.enterprise": "bool", "data.features.custom": "bool", "message": "string"}},
		{name: "license/auto-create", status: 200,
			do:     adminCalls("POST", aa+"/license/auto-create", nil),
			fields: shape{"success": "bool", "message": "string", "data": "object"}},
		{name: "license/create", status: 200,
			do:     adminCalls("POST", aa+"/license/create", `{"email":"a@b.c","firstName":"A","lastName":"B"}`),
			fields: shape{"success": "bool", "message": "string", "data": "object"}},
		{name: "license/create without names", status: 400,
			do:     adminCalls("POST", aa+"/license/create", `{}`),
			fields: errorShape},
		{name: "license/ping", status: 200,
			do:     adminCalls("POST", aa+"/license/ping", nil),
			fields: shape{"success": "bool", "message": "string", "data": "object"}},
		{name: "license/store-key", status: 200,
			do:     adminCalls("POST", aa+"/license/store-key", `{"licenseKey":"K-1"}`),
			fields: shape{"success": "bool", "message": "string", "data": "object"}},
		{name: "geoip/status", status: 200,
			do:     adminCalls("GET", aa+"/geoip/status", nil),
			fields: geoipStatusShape}, // more in compat_geoip_test.go
		{name: "geoip/credentials", status: 200,
			do:     adminCalls("PUT", aa+"/geoip/credentials", `{"accountId":"1","licenseKey":"k"}`),
			fields: shape{"success": "bool", "hasCredentials": "bool"}},
		{name: "geoip/credentials missing", status: 400,
			do:     adminCalls("PUT", aa+"/geoip/credentials", `{}`),
			fields: errorShape},
		{name: "geoip/update without a database", status: 400,
			do:     adminCalls("POST", aa+"/geoip/update", `{"force":true}`),
			fields: errorShape},
		{name: "simulate-timeout", status: 200,
			do:     adminCalls("POST", aa+"/sessions/{a2}/simulate-timeout", nil),
			fields: okMsg,
			check: func(t *testing.T, r resp, e *env, f *fixture) {
				s, err := e.st.GetSession(t.Context(), f.a2)
				require.NoError(t, err)
				assert.Equal(t, "idle", s.TerminationReason)
				assert.False(t, s.TerminatedManually)
			}},
		{name: "admin without a token", status: 401,
			do:     func(t *testing.T, e *env, f *fixture) resp { return e.do("GET", aa+"/sessions", nil, nil) },
			fields: errorShape},
		{name: "admin user/{unknown}/sessions", status: 200,
			do:     adminCalls("GET", aa+"/user/99999/sessions", nil),
			fields: shape{"data": "array", "meta.count": "number"},
			check:  func(t *testing.T, r resp, e *env, f *fixture) { assert.Empty(t, r.body["data"]) }},
		{name: "method not allowed", status: 405,
			do:     adminCalls("PATCH", aa+"/settings", `{}`),
			fields: errorShape, header: map[string]string{"Allow": "GET, PUT"}},
		{name: "unknown route", status: 404,
			do:     adminCalls("GET", aa+"/nope", nil),
			fields: errorShape},
	}
}

// aliceCalls is a case's request from alice's first session; {a1}, {a2}
// and {b1} in path stand for the fixture's session ids.
func aliceCalls(method, path string) func(*testing.T, *env, *fixture) resp {
	return func(_ *testing.T, e *env, f *fixture) resp { return e.user(f.aliceTok, method, f.expand(path), nil) }
}

// adminCalls is a case's request to the admin API, path as for aliceCalls.
func adminCalls(method, path string, body any) func(*testing.T, *env, *fixture) resp {
	return func(_ *testing.T, e *env, f *fixture) resp { return e.admin(method, f.expand(path), body) }
}

// expand puts the fixture's session ids in for {a1}, {a2} and {b1}.
func (f *fixture) expand(path string) string {
	return strings.NewReplacer("{a1}", f.a1, "{a2}", f.a2, "{b1}", f.b1).Replace(path)
}

func (s shape) with(o shape) shape {
	out := shape{}
	for k, v := range s {
		out[k] = v
	}
	for k, v := range o {
		out[k] = v
	}
	return out
}

// settingsShape is upstream's settings document (controllers/settings.js DEFAULT_SETTINGS).
func settingsShape(prefix string) shape {
	s := shape{}
	for k, v := range map[string]string{
		"inactivityTimeout": "number", "cleanupInterval": "number", "lastSeenRateLimit": "number", "retentionDays": "number",
		"maxSessionAgeDays": "number", "sessionCreationGraceMs": "number", "cleanupUseDbDirect": "bool",
		"rateLimitWriteMax": "number", "rateLimitReadMax": "number", "rateLimitWindowSeconds": "number",
		"enableGeolocation": "bool", "enableSecurityScoring": "bool", "blockSuspiciousSessions": "bool", "maxFailedLogins": "number",
		"enableGeofencing": "bool", "allowedCountries": "array", "blockedCountries": "array", "geoIpProvider": "string",
		"geoIpDatabasePath": "string", "geoLookupFailureMode": "string", "enableEmailAlerts": "bool",
		"alertOnSuspiciousLogin": "bool", "alertOnNewLocation": "bool", "alertOnVpnProxy": "bool", "enableWebhooks": "bool",
		"discordWebhookUrl": "string", "slackWebhookUrl": "string", "strictSessionEnforcement": "bool", "trustedProxies": "bool",
		"emailTemplates": "object",
	} {
		s[prefix+"."+k] = v
	}
	return s
}

// userDocID is the documentId alice's login answer gives.
const userDocID = "k3j4h5g6f7d8s9a0q1w2e3r4"

func TestStrapiCompat(t *testing.T) {
	for _, tc := range compatCases() {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.UserTokenCookie = "jwt"
				c.DevRoutes = true
				c.Geolocator = fakeGeo{}
				c.Keyring = testKeyring(t)
			})
			f := newFixture(t, e)
			r := tc.do(t, e, f)
			require.Equal(t, tc.status, r.status, string(r.raw))
			assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"), r.header.Get("Content-Type"))
			if r.status >= 400 {
				errorShape.check(t, r.body, "")
				assert.EqualValues(t, r.status, r.body["error"].(map[string]any)["status"])
			}
			tc.fields.check(t, r.body, "")
			for _, p := range tc.sessions {
				sessionShape.check(t, r.body, p)
				userShape.check(t, r.body, p+".user")
				if g, ok := lookup(r.body, p+".geoLocation"); ok && g != nil {
					geoShape.check(t, r.body, p+".geoLocation")
				}
			}
			for _, p := range tc.users {
				userShape.check(t, r.body, p)
			}
			for k, v := range tc.header {
				assert.Equal(t, v, r.header.Get(k), k)
			}
			if tc.check != nil {
				tc.check(t, r, e, f)
			}
		})
	}
}

func TestSimulateTimeoutIsDevelopmentOnly(t *testing.T) {
	e := newEnv(t)
	f := newFixture(t, e)
	r := e.admin("POST", aa+"/sessions/"+f.a2+"/simulate-timeout", nil)
	assert.Equal(t, 404, r.status, "no such route outside development")
}

func testKeyring(t testing.TB) *secrets.Keyring {
	kr, err := secrets.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	return kr
}

// loginNamed registers a session whose login answer named the user.
func (e *env) loginNamed(user, tok, doc, name, email string) string {
	e.t.Helper()
	r := e.internal("POST", protocol.PathSessions, protocol.RegisterRequest{UserID: user, Keys: tokenKeys(e.t, tok), IP: "203.0.113.7",
		UserAgent: "Mozilla/5.0 test", Route: "/api/auth/local", UserDocumentID: doc, Username: name, Email: email})
	require.Equal(e.t, 200, r.status, string(r.raw))
	return r.body["sessionId"].(string)
}

// TestGeolocationJSONPlaceholders: upstream's values for a private
// address and for a failed lookup (services/geolocation.js: the local
// placeholders, getFallbackData), its risk levels otherwise.
func TestGeolocationJSONPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		in                          map[string]any
		country, city, region, risk string
		score                       int
	}{
		{"private", map[string]any{"isPrivate": true, "securityScore": 100}, "Local Network", "Localhost", "Private Network", "None", 100},
		{"lookup failed", map[string]any{"securityScore": 100}, "Unknown", "Unknown", "Unknown", "Unknown", 50},
		{"located", map[string]any{"located": true, "country": "Germany", "country_code": "DE", "city": "Köln", "region": "NRW", "isVpn": true, "securityScore": 80},
			"Germany", "Köln", "NRW", "Medium", 80},
	} {
		got := geolocationJSON("203.0.113.9", tc.in)
		assert.Equal(t, tc.country, got["country"], tc.name)
		assert.Equal(t, tc.city, got["city"], tc.name)
		assert.Equal(t, tc.region, got["region"], tc.name)
		assert.Equal(t, tc.risk, got["riskLevel"], tc.name)
		assert.Equal(t, tc.score, got["securityScore"], tc.name)
	}
}
