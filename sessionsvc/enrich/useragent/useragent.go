// Package useragent turns a User-Agent header into the device type, browser
// (with major version) and operating system (with version) that sessionsvc
// shows for each session.
//
// Browser, OS family and device class come from github.com/medama-io/go-useragent
// (a maintained trie-based parser). That library does not report OS versions
// nor names bots and command-line clients, so small rules on top of it extract
// "Windows 10", "macOS 10.15", "iOS 17.4", "Android 14" and "curl 8", and fix
// the one device class it gets wrong (Android tablets, whose browsers omit the
// "Mobile" token).
package useragent

import (
	"strings"
	"unicode/utf8"

	ua "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// Device types.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceUnknown = "unknown"
)

// MaxLen is how much of a user agent is looked at. Real user agents are a
// few hundred bytes; anything longer is truncated before parsing.
const MaxLen = 512

// Device is what a user agent says about the client.
type Device struct {
	Type    string // DeviceDesktop, DeviceMobile, DeviceTablet, DeviceBot, DeviceUnknown
	Browser string // "Chrome 131", "" when unknown
	OS      string // "Windows 10", "" when unknown
}

// Parser parses user agents. It is safe for concurrent use; build one and reuse it.
type Parser struct {
	p *ua.Parser
}

// NewParser builds a parser (this loads the library's trie, a few milliseconds).
func NewParser() *Parser {
	return &Parser{p: ua.NewParser()}
}

// Parse never fails: unknown parts are left empty and the type is
// DeviceUnknown when nothing is recognised.
func (p *Parser) Parse(s string) Device {
	s = clean(s)
	if s == "" {
		return Device{Type: DeviceUnknown}
	}
	a := p.p.Parse(s)

	d := Device{Type: deviceType(a.Device(), a.OS(), s)}
	if b := string(a.Browser()); b != "" {
		d.Browser = withVersion(b, a.BrowserVersionMajor())
	}
	d.OS = osName(a.OS(), s)

	if d.Type == DeviceBot || d.Browser == "" {
		if name := clientName(s); name != "" {
			// A crawler that renders with Chrome is still named after the crawler.
			d.Browser = name
			if isBotName(s) || d.Type == DeviceUnknown {
				d.Type = DeviceBot
			}
		}
	}
	if d.Type == DeviceUnknown && isBotName(s) {
		d.Type = DeviceBot
	}
	return d
}

// clean truncates to MaxLen, drops invalid UTF-8 and control characters.
func clean(s string) string {
	if len(s) > MaxLen {
		s = s[:MaxLen]
	}
	if !needsCleaning(s) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if r == utf8.RuneError && size <= 1 {
			continue
		}
		if r < 0x20 || r == 0x7f {
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

func needsCleaning(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return true
		}
	}
	return false
}

func deviceType(dev agents.Device, os agents.OS, s string) string {
	switch dev {
	case agents.DeviceBot:
		return DeviceBot
	case agents.DeviceTablet:
		return DeviceTablet
	case agents.DeviceMobile:
		// Android tablets: Chrome omits "Mobile", Firefox says "Tablet".
		if os == agents.OSAndroid && (!strings.Contains(s, "Mobile") || strings.Contains(s, "Tablet")) {
			return DeviceTablet
		}
		return DeviceMobile
	case agents.DeviceDesktop:
		return DeviceDesktop
	}
	return DeviceUnknown
}

func withVersion(name, major string) string {
	if major == "" {
		return name
	}
	return name + " " + major
}

// osName adds the version the user agent states to the library's OS family.
func osName(os agents.OS, s string) string {
	switch os {
	case agents.OSWindows:
		return windowsName(s)
	case agents.OSMacOS:
		return macName(s)
	case agents.OSIOS:
		if v := appleVersion(s, "OS "); v != "" {
			return "iOS " + v
		}
		return "iOS"
	case agents.OSAndroid:
		if v := androidVersion(s); v != "" {
			return "Android " + v
		}
		return "Android"
	case "":
		return ""
	}
	return string(os)
}

// windowsName maps the NT version to the marketing name. Windows 11 sends
// "Windows NT 10.0" as well, so it reads as Windows 10 (only client hints tell them apart).
func windowsName(s string) string {
	i := strings.Index(s, "Windows NT ")
	if i < 0 {
		if strings.Contains(s, "Windows Phone") {
			return "Windows Phone"
		}
		return "Windows"
	}
	v := versionAt(s[i+len("Windows NT "):], '.')
	switch v {
	case "10.0":
		return "Windows 10"
	case "6.3":
		return "Windows 8.1"
	case "6.2":
		return "Windows 8"
	case "6.1":
		return "Windows 7"
	case "6.0":
		return "Windows Vista"
	case "5.1", "5.2":
		return "Windows XP"
	}
	return "Windows"
}

// macName: "Mac OS X 10_15_7" -> "macOS 10.15"; "Mac OS X 14.7" -> "macOS 14".
func macName(s string) string {
	i := strings.Index(s, "Mac OS X ")
	if i < 0 {
		return "macOS"
	}
	v := versionAt(s[i+len("Mac OS X "):], '_', '.')
	parts := strings.Split(v, ".")
	if len(parts) == 0 || parts[0] == "" {
		return "macOS"
	}
	if parts[0] == "10" && len(parts) > 1 {
		return "macOS 10." + parts[1]
	}
	return "macOS " + parts[0]
}

// appleVersion finds "<marker>17_4" (as in "CPU iPhone OS 17_4" or "CPU OS 17_4")
// and returns "17.4" (major.minor).
func appleVersion(s, marker string) string {
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], marker)
		if j < 0 {
			return ""
		}
		v := versionAt(s[i+j+len(marker):], '_', '.')
		if v != "" {
			parts := strings.SplitN(v, ".", 3)
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1]
			}
			return parts[0]
		}
		i += j + len(marker)
	}
	return ""
}

// androidVersion: "Android 14;" -> "14", "Android 8.1.0;" -> "8.1".
func androidVersion(s string) string {
	i := strings.Index(s, "Android ")
	if i < 0 {
		return ""
	}
	v := versionAt(s[i+len("Android "):], '.')
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 && parts[1] != "0" {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// versionAt reads a leading version made of digits and the given separators,
// normalising separators to '.', at most 3 components and 16 bytes.
func versionAt(s string, seps ...byte) string {
	var b strings.Builder
	parts := 0
	lastDigit := false
	for i := 0; i < len(s) && b.Len() < 16; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if !lastDigit {
				parts++
				if parts > 3 {
					return strings.TrimSuffix(b.String(), ".")
				}
			}
			b.WriteByte(c)
			lastDigit = true
		case lastDigit && isSep(c, seps):
			b.WriteByte('.')
			lastDigit = false
		default:
			return strings.TrimSuffix(b.String(), ".")
		}
	}
	return strings.TrimSuffix(b.String(), ".")
}

func isSep(c byte, seps []byte) bool {
	for _, s := range seps {
		if c == s {
			return true
		}
	}
	return false
}

// knownClients are crawlers and command-line/library clients named by
// "<token>/<version>" in the user agent, in the spelling shown to admins.
var knownClients = []struct{ token, name string }{
	{"Googlebot", "Googlebot"},
	{"bingbot", "Bingbot"},
	{"DuckDuckBot", "DuckDuckBot"},
	{"YandexBot", "YandexBot"},
	{"Baiduspider", "Baiduspider"},
	{"Applebot", "Applebot"},
	{"facebookexternalhit", "Facebook"},
	{"Twitterbot", "Twitterbot"},
	{"LinkedInBot", "LinkedInBot"},
	{"Slackbot", "Slackbot"},
	{"GPTBot", "GPTBot"},
	{"ClaudeBot", "ClaudeBot"},
	{"AhrefsBot", "AhrefsBot"},
	{"curl", "curl"},
	{"Wget", "Wget"},
	{"python-requests", "python-requests"},
	{"python-httpx", "python-httpx"},
	{"Go-http-client", "Go-http-client"},
	{"okhttp", "okhttp"},
	{"axios", "axios"},
	{"node-fetch", "node-fetch"},
	{"PostmanRuntime", "Postman"},
	{"insomnia", "Insomnia"},
	{"HTTPie", "HTTPie"},
	{"Java", "Java"},
}

// clientName names a known crawler or client with its major version ("curl 8").
func clientName(s string) string {
	for _, k := range knownClients {
		i := indexToken(s, k.token)
		if i < 0 {
			continue
		}
		rest := s[i+len(k.token):]
		if strings.HasPrefix(rest, "/") {
			v := versionAt(rest[1:], '.')
			major, _, _ := strings.Cut(v, ".")
			if major != "" {
				return k.name + " " + major
			}
		}
		return k.name
	}
	return ""
}

// indexToken finds token at a word boundary (case-sensitive, as clients spell themselves).
func indexToken(s, token string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], token)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || !isWordByte(s[i-1]) {
			return i
		}
		off = i + 1
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// isBotName: the usual self-descriptions of crawlers.
func isBotName(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "bot") || strings.Contains(l, "crawler") ||
		strings.Contains(l, "spider") || strings.Contains(l, "headlesschrome")
}
