package alert

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPickLocale(t *testing.T) {
	for in, want := range map[string]string{
		"": "en", "de": "de", "de-DE": "de", "pt_BR": "pt", "PT-br": "pt", "es-419": "es",
		"fr-CH, fr;q=0.9, en;q=0.8": "fr", "ja-JP, de;q=0.5": "de", "xx": "en", "*": "en",
	} {
		assert.Equal(t, want, PickLocale(in), in)
	}
}

func TestCatalogComplete(t *testing.T) {
	for _, loc := range Locales {
		c, ok := catalog[loc]
		assert.True(t, ok, loc)
		for _, e := range Events {
			assert.NotEmpty(t, c.Titles[e], "%s title %s", loc, e)
			assert.NotEmpty(t, c.Intro[e], "%s intro %s", loc, e)
		}
		for _, k := range labelKeys {
			assert.NotEmpty(t, c.Labels[k], "%s label %s", loc, k)
		}
	}
}

func TestRenderEveryLocale(t *testing.T) {
	p := samplePayload()
	p.Denied, p.DenyMessage = true, "Logins through Tor are not allowed."
	for _, loc := range Locales {
		p.Locale = loc
		m := Render(p)
		assert.Equal(t, loc, m.Locale)
		assert.Contains(t, m.Plain(), "81.2.69.142")
		assert.Contains(t, m.Plain(), "Logins through Tor are not allowed.")
		assert.Contains(t, m.HTML(), `lang="`+loc+`"`)
		assert.Equal(t, 0xD64541, m.Color, "refused logins are red")
	}
	assert.Equal(t, "Usuário bloqueado", Render(Payload{Event: EventUserBlocked, Locale: "pt"}).Title)
	assert.Equal(t, "Sesión terminada", Render(Payload{Event: EventSessionTerminated, Locale: "es-MX"}).Title)
}

func TestSubjectHasNoLineBreaks(t *testing.T) {
	m := Render(Payload{Event: EventLoginSuccess, UserID: "eve\r\nBcc: victim@example.com"})
	assert.NotContains(t, m.Subject(), "\n")
	assert.NotContains(t, m.Subject(), "\r")
}
