package dashboard

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	i18nBlock = regexp.MustCompile(`(?s)\n  (en|de|es|fr|pt): \{(.*?)\n  \}`)
	i18nPair  = regexp.MustCompile(`(?:^|[\s,{])(?:"([^"]+)"|([A-Za-z_]\w*))\s*:\s*"((?:[^"\\]|\\.)*)"`)
	i18nVar   = regexp.MustCompile(`\{\w+\}`)
	i18nUse   = regexp.MustCompile(`\bt(?:Opt)?\("([^"]+)"`)
)

func catalogues(t *testing.T) map[string]map[string]string {
	b, err := os.ReadFile("web/static/i18n.js")
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for _, m := range i18nBlock.FindAllStringSubmatch(string(b), -1) {
		dict := map[string]string{}
		for _, p := range i18nPair.FindAllStringSubmatch(m[2], -1) {
			k := p[1] + p[2]
			_, dup := dict[k]
			assert.False(t, dup, "%s: key %q twice", m[1], k)
			dict[k] = p[3]
		}
		out[m[1]] = dict
	}
	require.Len(t, out, 5, "five catalogues")
	return out
}

// sameWord lists texts that are rightly the same as in English.
var sameWord = map[string][]string{
	"de": {"details", "live.on", "col.status", "filter.status", "session.browser", "set.g.geofencing", "set.g.webhooks", "device.desktop",
		"device.tablet", "device.bot", "set.hook.name", "set.hook.url", "audit.detail"},
	"es": {"set.g.webhooks", "device.bot", "set.hook.url", "ov.recent"},
	"fr": {"nav.sessions", "status.active", "pagination", "session.title", "set.g.webhooks", "device.mobile", "col.actions", "set.hook.url", "audit.what"},
	"pt": {"set.g.webhooks", "device.tablet", "set.hook.url", "ov.recent"},
}

// TestTranslationsComplete fails on a key missing from a language, a text
// left in English, or placeholders that differ from the English text.
func TestTranslationsComplete(t *testing.T) {
	cat := catalogues(t)
	en := cat["en"]
	require.Greater(t, len(en), 200)
	for _, lang := range []string{"de", "es", "fr", "pt"} {
		dict := cat[lang]
		var missing, extra, english []string
		for k, v := range en {
			tr, ok := dict[k]
			if !ok {
				missing = append(missing, k)
				continue
			}
			if tr == v && !contains(sameWord[lang], k) {
				english = append(english, k)
			}
			a, b := i18nVar.FindAllString(v, -1), i18nVar.FindAllString(tr, -1)
			sort.Strings(a)
			sort.Strings(b)
			assert.Equal(t, a, b, "%s %s: placeholders", lang, k)
			assert.NotEmpty(t, strings.TrimSpace(tr), "%s %s", lang, k)
		}
		for k := range dict {
			if _, ok := en[k]; !ok {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(english)
		assert.Empty(t, missing, "%s: untranslated keys", lang)
		assert.Empty(t, extra, "%s: keys English lacks", lang)
		assert.Empty(t, english, "%s: texts still in English", lang)
	}
	// Every literal key the page uses exists (dynamic ones, "prefix." + x,
	// are checked in the browser tests).
	src, err := os.ReadFile("web/static/app.js")
	require.NoError(t, err)
	for _, m := range i18nUse.FindAllStringSubmatch(string(src), -1) {
		if k := m[1]; !strings.HasSuffix(k, ".") {
			_, ok := en[k]
			assert.True(t, ok, "app.js uses %q, not in the English catalogue", k)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
