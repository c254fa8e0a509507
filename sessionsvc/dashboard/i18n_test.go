package dashboard

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	i18nVar = regexp.MustCompile(`\{\w+\}`)
	i18nUse = regexp.MustCompile(`\bt(?:Opt)?\("([^"]+)"`)
)

// catalogues reads web/i18n/<lang>.json for every language, failing on a
// key that stands twice in one file (encoding/json would keep the last).
func catalogues(t *testing.T) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, lang := range languages {
		f, err := os.Open("web/i18n/" + lang + ".json")
		require.NoError(t, err)
		dec := json.NewDecoder(f)
		dict := map[string]string{}
		tok, err := dec.Token()
		require.NoError(t, err)
		require.Equal(t, json.Delim('{'), tok, "%s: a JSON object", lang)
		for dec.More() {
			tok, err := dec.Token()
			require.NoError(t, err, lang)
			var v string
			require.NoError(t, dec.Decode(&v), "%s %s", lang, tok)
			k := tok.(string)
			_, dup := dict[k]
			assert.False(t, dup, "%s: key %q twice", lang, k)
			dict[k] = v
		}
		require.NoError(t, f.Close())
		out[lang] = dict
	}
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
