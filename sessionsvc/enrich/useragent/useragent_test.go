package useragent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	p := NewParser()
	tests := []struct {
		name string
		ua   string
		want Device
	}{
		{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			Device{DeviceDesktop, "Chrome 131", "Windows 10"}},
		{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
			Device{DeviceDesktop, "Edge 131", "Windows 10"}},
		{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
			Device{DeviceDesktop, "Firefox 133", "Windows 10"}},
		{"chrome windows 7", "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
			Device{DeviceDesktop, "Chrome 109", "Windows 7"}},
		{"safari macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
			Device{DeviceDesktop, "Safari 17", "macOS 10.15"}},
		{"chrome macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			Device{DeviceDesktop, "Chrome 131", "macOS 10.15"}},
		{"firefox macos 14", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
			Device{DeviceDesktop, "Firefox 133", "macOS 14"}},
		{"chrome linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			Device{DeviceDesktop, "Chrome 131", "Linux"}},
		{"firefox ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			Device{DeviceDesktop, "Firefox 133", "Linux"}},
		{"chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			Device{DeviceDesktop, "Chrome 131", "ChromeOS"}},
		{"safari iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
			Device{DeviceMobile, "Safari 17", "iOS 17.4"}},
		{"chrome iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
			Device{DeviceMobile, "Chrome 131", "iOS 18.1"}},
		{"safari ipad", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
			Device{DeviceTablet, "Safari 17", "iOS 17.4"}},
		{"chrome android phone", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
			Device{DeviceMobile, "Chrome 131", "Android 14"}},
		{"chrome android reduced", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
			Device{DeviceMobile, "Chrome 131", "Android 10"}},
		{"samsung browser", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
			Device{DeviceMobile, "Samsung Browser 25", "Android 14"}},
		{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
			Device{DeviceMobile, "Firefox 133", "Android 14"}},
		{"android 8.1", "Mozilla/5.0 (Linux; Android 8.1.0; Nexus 5X) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
			Device{DeviceMobile, "Chrome 119", "Android 8.1"}},
		{"chrome android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Safari/537.36",
			Device{DeviceTablet, "Chrome 131", "Android 13"}},
		{"firefox android tablet", "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
			Device{DeviceTablet, "Firefox 133", "Android 14"}},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			Device{DeviceBot, "Googlebot 2", ""}},
		{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			Device{DeviceBot, "Googlebot 2", "Android 6"}},
		{"googlebot chrome", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36",
			Device{DeviceBot, "Googlebot 2", ""}},
		{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
			Device{DeviceBot, "Bingbot 2", ""}},
		{"curl", "curl/8.4.0", Device{DeviceBot, "curl 8", ""}},
		{"go client", "Go-http-client/1.1", Device{DeviceBot, "Go-http-client 1", ""}},
		{"python requests", "python-requests/2.31.0", Device{DeviceBot, "python-requests 2", ""}},
		{"empty", "", Device{DeviceUnknown, "", ""}},
		{"spaces", "   \t ", Device{DeviceUnknown, "", ""}},
		{"garbage", "hello world", Device{DeviceUnknown, "", ""}},
		{"unknown crawler", "SomeCrawler/1.0 (+https://example.com)", Device{DeviceBot, "", ""}},
		{"binary", "\x00\xff\xfe\x01\x80\x81\x1b[0m", Device{DeviceUnknown, "", ""}},
		{"binary around a token", "\x00\xff\xfe\x01Chrome/\x80\x81", Device{DeviceUnknown, "Chrome", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, p.Parse(tt.ua))
		})
	}
}

func TestParseAbsurd(t *testing.T) {
	p := NewParser()
	chrome := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

	// 10 KiB of padding after a real user agent: the prefix still parses.
	d := p.Parse(chrome + strings.Repeat("A", 10<<10))
	assert.Equal(t, Device{DeviceDesktop, "Chrome 131", "Windows 10"}, d)

	// 10 KiB of junk: no panic, nothing invented.
	d = p.Parse(strings.Repeat("\xff\x00(;", 10<<8))
	assert.Equal(t, DeviceUnknown, d.Type)
	assert.Empty(t, d.Browser)
	assert.Empty(t, d.OS)

	// Absurd version numbers are bounded.
	d = p.Parse("Mozilla/5.0 (Windows NT 10.0) Chrome/" + strings.Repeat("9", 5000) + ".0 Safari/537.36")
	assert.LessOrEqual(t, len(d.Browser), 64)
}

func TestVersionAt(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10_15_7)", "10.15.7"},
		{"17_4 like", "17.4"},
		{"1.2.3.4.5", "1.2.3"},
		{"x1", ""},
		{"14;", "14"},
		{"8.", "8"},
		{"", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, versionAt(tt.in, '.', '_'), tt.in)
	}
}

func FuzzParse(f *testing.F) {
	p := NewParser()
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1")
	f.Add("curl/8.4.0")
	f.Add("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)")
	f.Fuzz(func(t *testing.T, s string) {
		d := p.Parse(s)
		switch d.Type {
		case DeviceDesktop, DeviceMobile, DeviceTablet, DeviceBot, DeviceUnknown:
		default:
			t.Fatalf("unexpected device type %q", d.Type)
		}
		if len(d.Browser) > MaxLen || len(d.OS) > MaxLen {
			t.Fatalf("oversized result")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	p := NewParser()
	s := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	for b.Loop() {
		p.Parse(s)
	}
}
