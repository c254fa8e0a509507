package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/server"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Config is sessionsvc's configuration; every field has a flag and an
// environment variable (the flag wins).
type Config struct {
	Addr              string
	DatabaseURL       string
	InternalKey       string
	JWTSecret         string
	JWTPublicKeyFile  string
	JWKSURL           string
	JWTIssuer         string
	JWTAudience       string
	AdminToken        string
	EncryptionKey     string
	InactivityTimeout time.Duration
	EndIdleAfter      time.Duration // 0: the inactivity timeout
	MaxSessionAge     time.Duration
	Retention         time.Duration // negative keeps ended sessions forever
	CleanupInterval   time.Duration
	ShutdownTimeout   time.Duration
	ActivityFlush     time.Duration // 0 writes activity through
	LogFormat         string
	LogLevel          string
	TokenCookie       string   // cookie the user API also reads the token from (the proxy's token_cookie)
	DevRoutes         bool     // development-only admin routes (simulate-timeout)
	CORSOrigins       []string // origins browsers may call the user and admin APIs from ("*": any); nil: no CORS
}

type option struct {
	flag, env, def, help string
	set                  func(string) error
}

func (c *Config) options() []option {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration, allowNeg bool) func(string) error {
		return func(v string) error {
			if v == "-1" && allowNeg {
				*p = -1
				return nil
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration (e.g. 15m, 720h): %q", v)
			}
			if d < 0 && !allowNeg {
				return fmt.Errorf("must not be negative: %q", v)
			}
			*p = d
			return nil
		}
	}
	return []option{
		{"addr", "SESSIONSVC_ADDR", ":8081", "listen address", str(&c.Addr)},
		{"database-url", "DATABASE_URL", store.DefaultDatabaseURL, "sqlite://path or postgres://…", str(&c.DatabaseURL)},
		{"internal-key", "MESHSESSION_INTERNAL_KEY", "", "shared key of the plugin's internal API (generated and printed when empty)", str(&c.InternalKey)},
		{"jwt-secret", "JWT_SECRET", "", "HS256 secret of the app's user JWTs", str(&c.JWTSecret)},
		{"jwt-public-key-file", "JWT_PUBLIC_KEY_FILE", "", "PEM public key of the app's user JWTs (RS256 or ES256)", str(&c.JWTPublicKeyFile)},
		{"jwks-url", "JWKS_URL", "", "JWKS endpoint of the app's user JWTs (RS256, ES256)", str(&c.JWKSURL)},
		{"jwt-issuer", "JWT_ISSUER", "", "required iss of user JWTs (unchecked when empty)", str(&c.JWTIssuer)},
		{"jwt-audience", "JWT_AUDIENCE", "", "required aud of user JWTs (unchecked when empty)", str(&c.JWTAudience)},
		{"admin-token", "ADMIN_TOKEN", "", "bootstrap admin bearer token, stored hashed (a development token is generated and printed when empty)", str(&c.AdminToken)},
		{"encryption-key", "SESSION_ENCRYPTION_KEY", "", "comma-separated base64 32-byte keys sealing stored secrets; the first encrypts", str(&c.EncryptionKey)},
		{"inactivity-timeout", "INACTIVITY_TIMEOUT", "15m", "a session not seen for this long is not truly active", dur(&c.InactivityTimeout, false)},
		{"end-idle-after", "END_IDLE_AFTER", "", "end sessions idle this long with reason idle (default: the inactivity timeout; 0s disables)", dur(&c.EndIdleAfter, false)},
		{"max-session-age", "MAX_SESSION_AGE", "720h", "end sessions older than this with reason expired (0s disables)", dur(&c.MaxSessionAge, false)},
		{"retention", "RETENTION", "2160h", "delete ended sessions this long after they ended (-1 keeps them forever)", dur(&c.Retention, true)},
		{"cleanup-interval", "CLEANUP_INTERVAL", "1m", "how often the lifecycle jobs run", dur(&c.CleanupInterval, false)},
		{"activity-flush-interval", "ACTIVITY_FLUSH_INTERVAL", "1s", "buffer last-seen marks and write them this often (0s writes each batch through)", dur(&c.ActivityFlush, false)},
		{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "30s", "how long shutdown waits for in-flight requests", dur(&c.ShutdownTimeout, false)},
		{"log-format", "LOG_FORMAT", "text", "json or text", str(&c.LogFormat)},
		{"log-level", "LOG_LEVEL", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"token-cookie", "TOKEN_COOKIE", "jwt", "cookie the user API also takes the user's token from: the filter's token_cookie (none: bearer only)", func(v string) error {
			if v == "none" {
				v = ""
			}
			c.TokenCookie = v
			return nil
		}},
		{"cors-origins", "CORS_ORIGINS", "*", "origins browsers may call the user and admin APIs from: * (any, as Strapi), a comma-separated list of scheme://host[:port], or none; never with cookies (cross-origin callers send the bearer token)", func(v string) error {
			o, err := server.ParseCORSOrigins(v)
			c.CORSOrigins = o
			return err
		}},
		{"dev-routes", "DEV_ROUTES", "false", "enable development-only admin routes (sessions/{id}/simulate-timeout)", func(v string) error {
			switch strings.ToLower(v) {
			case "1", "true", "yes", "on":
				c.DevRoutes = true
			case "", "0", "false", "no", "off":
				c.DevRoutes = false
			default:
				return fmt.Errorf("not a boolean: %q", v)
			}
			return nil
		}},
	}
}

// endIdleSet records whether END_IDLE_AFTER / --end-idle-after was given.
type parsed struct {
	Config
	endIdleSet bool
}

// ParseConfig reads flags over environment variables over defaults.
// It returns flag.ErrHelp after printing the usage for -h/--help.
func ParseConfig(name string, args []string, getenv func(string) string, usageOut io.Writer) (Config, bool, []string, error) {
	var p parsed
	opts := p.Config.options()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usageOut)
	flagVals := map[string]*string{}
	for _, o := range opts {
		flagVals[o.flag] = fs.String(o.flag, "", o.help)
	}
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: %s [flags]\n       %s token create --name NAME | token list | token revoke ID\n\nFlags (environment variable, default):\n", name, name)
		for _, o := range opts {
			def := o.def
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(usageOut, "  --%-22s %s (default %s)\n      %s\n", o.flag, o.env, def, o.help)
		}
		printEnvOnly(usageOut)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, false, nil, err
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	var problems []string
	for _, o := range opts {
		v, src := o.def, "default"
		if e := getenv(o.env); e != "" {
			v, src = e, o.env
		}
		if explicit[o.flag] {
			v, src = *flagVals[o.flag], "--"+o.flag
		}
		if o.flag == "end-idle-after" {
			p.endIdleSet = src != "default"
			if v == "" {
				continue
			}
		}
		if err := o.set(v); err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): %v", o.env, src, err))
		}
	}
	c := p.Config
	switch c.LogFormat {
	case "json", "text":
	default:
		problems = append(problems, fmt.Sprintf("LOG_FORMAT: want json or text, got %q", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		problems = append(problems, fmt.Sprintf("LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel))
	}
	if c.InactivityTimeout <= 0 {
		problems = append(problems, "INACTIVITY_TIMEOUT: must be positive")
	}
	if c.CleanupInterval <= 0 {
		problems = append(problems, "CLEANUP_INTERVAL: must be positive")
	}
	if c.InternalKey != "" && len(c.InternalKey) < 16 {
		problems = append(problems, "MESHSESSION_INTERNAL_KEY: must be at least 16 characters")
	}
	if len(problems) > 0 {
		return Config{}, false, nil, errors.New("configuration: " + strings.Join(problems, "; "))
	}
	return c, p.endIdleSet, fs.Args(), nil
}

// DefaultConfig is the configuration with every default applied and no
// environment read (for running sessionsvc in process, e.g. in tests).
func DefaultConfig() Config {
	c, _, _, err := ParseConfig("sessionsvc", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic("default configuration is invalid: " + err.Error()) // a bug in the defaults table
	}
	return c
}
