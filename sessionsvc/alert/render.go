package alert

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"time"
)

// Locales with translations; anything else falls back to DefaultLocale.
var Locales = []string{"en", "de", "es", "fr", "pt"}

// DefaultLocale is used when the login's locale is unknown or unsupported.
const DefaultLocale = "en"

// PickLocale chooses a supported language from a locale or an
// Accept-Language value ("de-DE", "pt_BR", "fr-CH, fr;q=0.9, en;q=0.8").
func PickLocale(s string) string {
	for _, part := range strings.Split(s, ",") {
		tag, _, _ := strings.Cut(part, ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		primary, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
		if _, ok := catalog[primary]; ok {
			return primary
		}
	}
	return DefaultLocale
}

// texts are the strings of one language.
type texts struct {
	Titles map[string]string `json:"titles"` // per event
	Labels map[string]string `json:"labels"`
	Intro  map[string]string `json:"intro"` // per event: one sentence
}

var labelKeys = []string{"user", "time", "ip", "location", "device", "score", "reasons", "session", "reason", "denied", "footer"}

// textFiles holds the catalogue: texts/<locale>.json a language, data that
// translators edit without touching code.
//
//go:embed texts
var textFiles embed.FS

// catalog is read once; the files are part of the binary, so an error is a
// build mistake (TestCatalogComplete) and panics like template.Must.
var catalog = mustLoadCatalog(textFiles)

func mustLoadCatalog(files fs.FS) map[string]texts {
	out := make(map[string]texts, len(Locales))
	for _, loc := range Locales {
		var t texts
		b, err := fs.ReadFile(files, "texts/"+loc+".json")
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			err = dec.Decode(&t)
		}
		if err != nil {
			panic(fmt.Sprintf("alert texts %s: %v", loc, err))
		}
		out[loc] = t
	}
	return out
}

// Field is one labelled line of an alert.
type Field struct {
	Label string
	Value string
}

// Message is an alert rendered for people: the same content for mail,
// Slack and Discord.
type Message struct {
	Locale string
	Event  string
	Title  string
	Intro  string
	Fields []Field
	Denied string // set when the login was refused: the label and the message
	Footer string
	Color  int // RGB: red for threats and refusals, amber for warnings, green otherwise
}

// Render builds the message of p in the language chosen by p.Locale.
func Render(p Payload) Message {
	loc := PickLocale(p.Locale)
	t := catalog[loc]
	m := Message{Locale: loc, Event: p.Event, Title: t.Titles[p.Event], Intro: t.Intro[p.Event], Footer: t.Labels["footer"]}
	if m.Title == "" {
		m.Title = p.Event
	}
	add := func(key, v string) {
		if v != "" {
			m.Fields = append(m.Fields, Field{t.Labels[key], v})
		}
	}
	add("user", p.UserID)
	if !p.At.IsZero() {
		add("time", p.At.UTC().Format(time.RFC3339))
	}
	add("ip", p.IP)
	add("location", location(p))
	add("device", device(p))
	if p.Score != nil {
		v := fmt.Sprintf("%d/100", *p.Score)
		if p.Risk != "" {
			v += " (" + p.Risk + ")"
		}
		add("score", v)
	}
	add("reasons", strings.Join(p.Reasons, "; "))
	add("session", p.SessionID)
	add("reason", p.Reason)
	if p.Denied {
		m.Denied = t.Labels["denied"]
		if p.DenyMessage != "" {
			m.Denied += ": " + p.DenyMessage
		}
	}
	switch {
	case p.Denied || p.Event == EventLoginThreat || p.Event == EventUserBlocked:
		m.Color = 0xD64541
	case p.Event == EventLoginSuccess:
		m.Color = 0x2ECC71
	default:
		m.Color = 0xF5A623
	}
	return m
}

func location(p Payload) string {
	g := p.Geo
	if g == nil {
		return ""
	}
	var parts []string
	for _, s := range []string{g.City, g.Region, g.Country} {
		if s != "" && (len(parts) == 0 || parts[len(parts)-1] != s) {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func device(p Payload) string {
	var parts []string
	for _, s := range []string{p.Browser, p.OS} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	out := strings.Join(parts, " / ")
	if p.Device != "" && p.Device != "unknown" {
		if out == "" {
			return p.Device
		}
		out += " (" + p.Device + ")"
	}
	return out
}

// Plain renders m as plain text.
func (m Message) Plain() string {
	var b strings.Builder
	_ = textTmpl.Execute(&b, m)
	return b.String()
}

// Subject is the mail subject line.
func (m Message) Subject() string {
	s := "[meshsession] " + m.Title
	for _, f := range m.Fields {
		if f.Label == catalog[m.Locale].Labels["user"] {
			s += ": " + f.Value
			break
		}
	}
	return oneLine(s, 200)
}

// HTML renders m as an HTML document (values escaped).
func (m Message) HTML() string {
	var b bytes.Buffer
	_ = htmlTmpl.Execute(&b, m)
	return b.String()
}

func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

var textTmpl = texttemplate.Must(texttemplate.New("text").Parse(`{{.Title}}

{{.Intro}}
{{if .Denied}}
{{.Denied}}
{{end}}
{{range .Fields}}{{.Label}}: {{.Value}}
{{end}}
-- 
{{.Footer}}
`))

var htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Locale}}"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222">
<h2 style="margin:0 0 8px">{{.Title}}</h2>
<p>{{.Intro}}</p>
{{if .Denied}}<p style="color:#b00020;font-weight:600">{{.Denied}}</p>{{end}}
<table style="border-collapse:collapse">
{{range .Fields}}<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top">{{.Label}}</th><td style="padding:2px 0">{{.Value}}</td></tr>
{{end}}</table>
<p style="color:#888;font-size:12px">{{.Footer}}</p>
</body></html>
`))
