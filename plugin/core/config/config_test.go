package config_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/config"
)

func TestDefaults(t *testing.T) {
	for _, in := range []string{"", "   \n", "{}"} {
		c, err := config.Parse([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, "sessionsvc", c.Cluster)
		assert.Equal(t, "sessionsvc", c.Authority)
		assert.Equal(t, 2*time.Second, c.Timeout)
		assert.Equal(t, "jwt", c.TokenCookie)
		assert.Equal(t, []string{"sid", "jti", "sessionId"}, c.SessionClaims)
		assert.Equal(t, []string{"sub", "id"}, c.UserClaims)
		assert.Equal(t, config.LoginRoute{Route: config.Route{Path: "/api/auth/local", Method: "POST"}, TokenPath: "jwt", RefreshTokenPath: "refreshToken", UserIDPath: "user.id", IdentifierPath: "identifier",
			UserDocumentIDPath: "user.documentId", UsernamePath: "user.username", EmailPath: "user.email"}, c.Login)
		assert.Equal(t, config.RefreshRoute{Route: config.Route{Path: "/api/auth/refresh", Method: "POST"}, RequestTokenPath: "refreshToken", TokenPath: "jwt", RefreshTokenPath: "refreshToken"}, c.Refresh)
		assert.Equal(t, config.Route{Path: "/api/auth/logout", Method: "POST"}, c.Logout)
		assert.Equal(t, 30*time.Second, c.LastSeenInterval)
		assert.Equal(t, 500*time.Millisecond, c.SyncInterval)
		assert.Equal(t, 5000, c.SyncPageSize)
		assert.Equal(t, 30*time.Second, c.MaxStaleness)
		assert.Equal(t, config.FailOpen, c.StalePolicy)
		assert.Equal(t, config.LoginAllow, c.LoginUnavailablePolicy)
		assert.Equal(t, []string{"/healthz"}, c.SkipPaths)
		assert.False(t, c.RequireToken)
		assert.True(t, c.EnforceExpiry)
		assert.Equal(t, config.IdentityHeaders{SessionID: "x-session-id", UserID: "x-user-id"}, c.IdentityHeaders)
		assert.Equal(t, 0, c.TrustedProxyHops)
		assert.Equal(t, config.ModeNone, c.Verify.Mode)
		assert.Equal(t, "envoy.filters.http.jwt_authn", c.Verify.MetadataNamespace)
		assert.Equal(t, "jwt_payload", c.Verify.MetadataKey)
		assert.Empty(t, c.Verify.Issuer)
		assert.Empty(t, c.Verify.Audiences)
		assert.False(t, c.RequireExp)
		assert.False(t, c.HeadersStopIteration, "off by default: works on every Envoy and Istio")
		assert.Equal(t, config.DefaultSyncWait, c.SyncWait)
		assert.Len(t, c.Warnings, 1, "empty internal_key warns")
	}
}

func TestFullConfig(t *testing.T) {
	in := `{
	  "cluster": "svc", "authority": "svc.local:8081", "internal_key": "k",
	  "timeout": "1500ms", "token_cookie": "",
	  "session_claims": ["sessionId"], "user_claims": [],
	  "login":   {"path": "/login", "method": "PUT", "token_path": "data.token", "refresh_token_path": "", "user_id_path": "data.user.id", "identifier_path": "email"},
	  "refresh": {"path": "/refresh", "method": "POST", "request_token_path": "", "request_token_cookie": "rt", "token_path": "t", "refresh_token_path": "r"},
	  "logout":  {"path": "", "method": "POST"},
	  "last_seen_interval": "1m", "sync_interval": "250ms", "sync_page_size": 100000,
	  "max_staleness": "2m", "stale_policy": "fail_closed", "login_unavailable_policy": "deny",
	  "skip_paths": [], "require_token": true, "enforce_expiry": false,
	  "identity_headers": {"session_id": "x-sid", "user_id": ""},
	  "trusted_proxy_hops": 2, "require_exp": true, "headers_stop_iteration": true,
	  "verify": {"mode": "hs256", "secret": "shh", "issuer": "https://idp.example", "audiences": ["api", "admin"]}
	}`
	c, err := config.Parse([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, "svc.local:8081", c.Authority)
	assert.Equal(t, 1500*time.Millisecond, c.Timeout)
	assert.Equal(t, "", c.TokenCookie)
	assert.Equal(t, []string{}, c.UserClaims)
	assert.Equal(t, "data.token", c.Login.TokenPath)
	assert.Equal(t, "rt", c.Refresh.RequestTokenCookie)
	assert.Equal(t, "", c.Logout.Path)
	assert.Equal(t, time.Minute, c.LastSeenInterval)
	assert.Equal(t, 100000, c.SyncPageSize)
	assert.Equal(t, config.FailClosed, c.StalePolicy)
	assert.Equal(t, []string{}, c.SkipPaths)
	assert.True(t, c.RequireToken)
	assert.False(t, c.EnforceExpiry)
	assert.Equal(t, "", c.IdentityHeaders.UserID)
	assert.Equal(t, 2, c.TrustedProxyHops)
	assert.Equal(t, "shh", c.Verify.Secret)
	assert.True(t, c.RequireExp)
	assert.True(t, c.HeadersStopIteration)
	assert.Equal(t, "https://idp.example", c.Verify.Issuer)
	assert.Equal(t, []string{"api", "admin"}, c.Verify.Audiences)
	assert.Empty(t, c.Warnings)
}

// TestEveryMemberReachesItsField: each member of the configuration sets
// the field its name says, and only members the configuration documents
// are accepted.
func TestEveryMemberReachesItsField(t *testing.T) {
	in := `{
	  "cluster": "c", "authority": "a:1", "internal_key": "k", "timeout": "1s", "token_cookie": "tc",
	  "session_claims": ["s"], "user_claims": ["u"],
	  "login": {"path": "/l", "method": "PUT", "token_path": "t", "refresh_token_path": "r", "user_id_path": "u",
	    "identifier_path": "i", "user_document_id_path": "d", "username_path": "n", "email_path": "e"},
	  "refresh": {"path": "/r", "method": "PATCH", "request_token_path": "q", "request_token_cookie": "qc", "token_path": "t2", "refresh_token_path": "r2"},
	  "logout": {"path": "/o", "method": "DELETE"},
	  "last_seen_interval": "2s", "sync_interval": "3s", "sync_page_size": 7, "max_staleness": "90s",
	  "stale_policy": "fail_closed", "login_unavailable_policy": "deny", "skip_paths": ["/h"],
	  "require_token": true, "enforce_expiry": false, "require_exp": true,
	  "identity_headers": {"session_id": "x-s", "user_id": "x-u"}, "trusted_proxy_hops": 3,
	  "startup_hold": "0s", "revoking_routes": ["POST /x"], "headers_stop_iteration": true, "sync_wait": "4s",
	  "pending_logouts": 9,
	  "verify": {"mode": "hs256", "secret": "shh", "public_keys": [], "metadata_namespace": "ns", "metadata_key": "mk",
	    "issuer": "iss", "audiences": ["aud"]}
	}`
	c, err := config.Parse([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, &config.Config{
		Cluster: "c", Authority: "a:1", InternalKey: "k", Timeout: time.Second, TokenCookie: "tc",
		SessionClaims: []string{"s"}, UserClaims: []string{"u"},
		Login: config.LoginRoute{Route: config.Route{Path: "/l", Method: "PUT"}, TokenPath: "t", RefreshTokenPath: "r", UserIDPath: "u",
			IdentifierPath: "i", UserDocumentIDPath: "d", UsernamePath: "n", EmailPath: "e"},
		Refresh: config.RefreshRoute{Route: config.Route{Path: "/r", Method: "PATCH"}, RequestTokenPath: "q", RequestTokenCookie: "qc",
			TokenPath: "t2", RefreshTokenPath: "r2"},
		Logout:           config.Route{Path: "/o", Method: "DELETE"},
		LastSeenInterval: 2 * time.Second, SyncInterval: 3 * time.Second, SyncPageSize: 7, MaxStaleness: 90 * time.Second,
		StalePolicy: config.FailClosed, LoginUnavailablePolicy: config.LoginDeny, SkipPaths: []string{"/h"},
		RequireToken: true, EnforceExpiry: false, RequireExp: true,
		IdentityHeaders: config.IdentityHeaders{SessionID: "x-s", UserID: "x-u"}, TrustedProxyHops: 3,
		StartupHold: 0, RevokingRoutes: []string{"POST /x"}, HeadersStopIteration: true, SyncWait: 4 * time.Second,
		PendingLogouts: 9,
		Verify: config.Verify{Mode: config.ModeHS256, Secret: "shh", PublicKeys: []string{}, MetadataNamespace: "ns", MetadataKey: "mk",
			Issuer: "iss", Audiences: []string{"aud"}},
	}, c)

	for _, in := range []string{`{"warnings":[]}`, `{"Warnings":[]}`, `{"verify":{"keys":[]}}`, `{"login":{"route":{}}}`, `{"login":{"Route":{}}}`} {
		_, err := config.Parse([]byte(in))
		assert.ErrorContains(t, err, "unknown field", in)
	}
}

func pemOf(t *testing.T, typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestPublicKeys(t *testing.T) {
	rk, small := jwttest.RSAKey(2048), jwttest.RSAKey(1024)
	ek, ek384 := jwttest.ECKey(elliptic.P256()), jwttest.ECKey(elliptic.P384())
	pkix := jwttest.PublicPEM
	cfg := func(mode string, keys ...string) []byte {
		if keys == nil {
			keys = []string{}
		}
		b, _ := json.Marshal(map[string]any{"verify": map[string]any{"mode": mode, "public_keys": keys}})
		return b
	}
	c, err := config.Parse(cfg("rs256", pkix(&rk.PublicKey), pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rk.PublicKey))))
	require.NoError(t, err)
	assert.Len(t, c.Verify.Keys, 2)
	c, err = config.Parse(cfg("es256", pkix(&ek.PublicKey)))
	require.NoError(t, err)
	assert.Len(t, c.Verify.Keys, 1)

	bad := []struct {
		in   []byte
		want string
	}{
		{cfg("rs256"), `field "verify.public_keys": must not be empty when verify.mode is rs256`},
		{cfg("rs256", "not pem"), `field "verify.public_keys[0]": not a PEM block`},
		{cfg("rs256", pkix(&rk.PublicKey), pkix(&ek.PublicKey)), `field "verify.public_keys[1]": ECDSA key given for verify.mode rs256`},
		{cfg("es256", pkix(&rk.PublicKey)), `RSA key given for verify.mode es256`},
		{cfg("es256", pkix(&ek384.PublicKey)), `not on curve P-256`},
		{cfg("rs256", pkix(&small.PublicKey)), `too small`},
		{cfg("rs256", pemOf(t, "PUBLIC KEY", []byte("garbage"))), `parse PEM key`},
		{cfg("rs256", pemOf(t, "PRIVATE KEY", []byte("x"))), `unsupported PEM block "PRIVATE KEY"`},
		{cfg("rs256", pkix(&rk.PublicKey)+pkix(&rk.PublicKey)), `trailing data`},
		{cfg("none", pkix(&rk.PublicKey)), `field "verify.public_keys": is only used with verify.mode rs256 or es256`},
	}
	for _, tc := range bad {
		_, err := config.Parse(tc.in)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"sync_interval":"5x"}`, `config: field "sync_interval": invalid duration "5x"`},
		{`{"sync_interval":500}`, `config: field "sync_interval": must be a duration string`},
		{`{"timeout":"0s"}`, `config: field "timeout": must be a positive duration`},
		{`{"max_staleness":"-1s"}`, `field "max_staleness": must be a positive duration`},
		{`{"last_seen_interval":""}`, `field "last_seen_interval": invalid duration ""`},
		{`{"verify":{"mode":"jwks"}}`, `config: field "verify.mode": must be one of none, jwt_authn_metadata, hs256, rs256, es256`},
		{`{"verify":{"mode":"hs256"}}`, `field "verify.secret": must not be empty when verify.mode is hs256`},
		{`{"verify":{"secret":"x"}}`, `field "verify.secret": is only used with verify.mode hs256`},
		{`{"verify":{"mode":"jwt_authn_metadata","metadata_key":""}}`, `field "verify.metadata_key": must not be empty`},
		{`{"verify":{"nope":1}}`, `config: field "verify.nope": unknown field`},
		{`{"bogus":1}`, `config: field "bogus": unknown field`},
		{`{"login":{"path":"/x","extra":1}}`, `field "login.extra": unknown field`},
		{`{"cluster":"a","cluster":"b"}`, `field "cluster": duplicate field`},
		{`{"cluster":""}`, `field "cluster": must not be empty`},
		{`{"cluster":5}`, `field "cluster": must be a string`},
		{`{"authority":"a b"}`, `field "authority": must be a host[:port]`},
		{`{"token_cookie":"a b"}`, `field "token_cookie": invalid cookie name`},
		{`{"session_claims":"sid"}`, `field "session_claims": must be an array of strings`},
		{`{"session_claims":["sid",1]}`, `field "session_claims[1]": must be a string`},
		{`{"user_claims":[""]}`, `field "user_claims[0]": must not be empty`},
		{`{"user_claims":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, `field "user_claims": at most 16 names`},
		{`{"login":{"path":"api/login"}}`, `field "login.path": must start with "/"`},
		{`{"login":{"path":"/a?b"}}`, `field "login.path": must be a path without query`},
		{`{"login":{"method":"PO ST"}}`, `field "login.method": must be an HTTP method`},
		{`{"login":{"token_path":""}}`, `field "login.token_path": must not be empty when login.path is set`},
		{`{"login":[]}`, `field "login": must be a JSON object`},
		{`{"refresh":{"request_token_path":""}}`, `field "refresh.request_token_path": refresh.request_token_path or refresh.request_token_cookie must be set`},
		{`{"refresh":{"request_token_cookie":"a;b"}}`, `field "refresh.request_token_cookie": invalid cookie name`},
		{`{"logout":{"path":"x"}}`, `field "logout.path": must start with "/"`},
		{`{"sync_page_size":0}`, `field "sync_page_size": must be between 1 and 100000, got 0`},
		{`{"sync_page_size":1.5}`, `field "sync_page_size": must be an integer, got 1.5`},
		{`{"sync_page_size":"10"}`, `field "sync_page_size": must be an integer`},
		{`{"sync_page_size":1e3}`, `field "sync_page_size": must be an integer, got 1e3`},
		{`{"stale_policy":"fail"}`, `field "stale_policy": must be one of fail_open, fail_closed`},
		{`{"login_unavailable_policy":"maybe"}`, `field "login_unavailable_policy": must be one of allow, deny`},
		{`{"skip_paths":["healthz"]}`, `field "skip_paths[0]": must start with "/"`},
		{`{"require_token":"yes"}`, `field "require_token": must be true or false`},
		{`{"enforce_expiry":1}`, `field "enforce_expiry": must be true or false`},
		{`{"identity_headers":{"session_id":"X-Session-Id"}}`, `field "identity_headers.session_id": must be a lowercase header name`},
		{`{"identity_headers":{"user_id":":path"}}`, `field "identity_headers.user_id": must be a lowercase header name`},
		{`{"identity_headers":{"user_id":"x-session-id"}}`, `field "identity_headers.user_id": must differ`},
		{`{"trusted_proxy_hops":-1}`, `field "trusted_proxy_hops": must be between 0 and 64`},
		{`{"trusted_proxy_hops":99999999999}`, `field "trusted_proxy_hops": must be an integer`},
		{`{"headers_stop_iteration":"yes"}`, `field "headers_stop_iteration": must be true or false`},
		{`{"require_exp":"yes"}`, `field "require_exp": must be true or false`},
		{`{"verify":{"issuer":1}}`, `field "verify.issuer"`},
		{`{"verify":{"issuer":"a\nb"}}`, `field "verify.issuer": must not contain control characters`},
		{`{"verify":{"audiences":"api"}}`, `field "verify.audiences"`},
		{`{"verify":{"audiences":[""]}}`, `field "verify.audiences[0]": must be a non-empty string`},
		{`{"verify":{"audiences":["a","b\u0000"]}}`, `field "verify.audiences[1]"`},
		{`{"verify":{"audience":"api"}}`, `field "verify.audience": unknown field`},
		{`{"verify":{"require_exp":true}}`, `field "verify.require_exp": unknown field`},
		{`[]`, `config: must be a JSON object`},
		{`null`, `config: must be a JSON object`},
		{`{"cluster":"x"`, `config: not valid JSON`},
		{`{"cluster":"x"} {}`, `config: not valid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var fe *config.FieldError
			assert.ErrorAs(t, err, &fe)
		})
	}
}

// TestSyncWait: sync_wait defaults, bounds, and is lowered to a third of
// max_staleness.
func TestSyncWait(t *testing.T) {
	for _, tc := range []struct {
		json string
		want time.Duration
		err  bool
	}{
		{`{"cluster":"s"}`, config.DefaultSyncWait, false},
		{`{"cluster":"s","sync_wait":"0s"}`, 0, false},
		{`{"cluster":"s","sync_wait":"20s","max_staleness":"90s"}`, 20 * time.Second, false},
		{`{"cluster":"s","sync_wait":"20s"}`, 10 * time.Second, false}, // a third of the default max_staleness
		{`{"cluster":"s","max_staleness":"300ms"}`, 100 * time.Millisecond, false},
		{`{"cluster":"s","sync_wait":"26s","max_staleness":"5m"}`, 0, true},
		{`{"cluster":"s","sync_wait":"-1s"}`, 0, true},
		{`{"cluster":"s","sync_wait":"soon"}`, 0, true},
	} {
		c, err := config.Parse([]byte(tc.json))
		if tc.err {
			assert.Error(t, err, tc.json)
			continue
		}
		require.NoError(t, err, tc.json)
		assert.Equal(t, tc.want, c.SyncWait, tc.json)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"sync_interval":"1s","verify":{"mode":"hs256","secret":"x"}}`))
	f.Add([]byte(`{"login":{"path":"/l"},"skip_paths":["/a"],"identity_headers":{"user_id":"x-u"}}`))
	f.Add([]byte(`{"session_claims":[],"trusted_proxy_hops":3}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("config with error")
			}
			return
		}
		// A valid config always satisfies the invariants the plugin relies on.
		if c.Cluster == "" || c.Authority == "" || c.Timeout <= 0 || c.SyncInterval <= 0 || c.LastSeenInterval <= 0 || c.MaxStaleness <= 0 {
			t.Fatalf("invalid config accepted: %+v", c)
		}
		if c.SyncPageSize < 1 || c.TrustedProxyHops < 0 {
			t.Fatalf("invalid numbers accepted: %+v", c)
		}
	})
}
