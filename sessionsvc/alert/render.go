package alert

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
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
	Titles map[string]string // per event
	Labels map[string]string
	Intro  map[string]string // per event: one sentence
}

var labelKeys = []string{"user", "time", "ip", "location", "device", "score", "reasons", "session", "reason", "denied", "footer"}

var catalog = map[string]texts{
	"en": {
		Titles: map[string]string{
			EventLoginSuccess: "New login", EventLoginSuspicious: "Suspicious login",
			EventLoginNewLocation: "Login from a new location", EventLoginVPN: "Login through a VPN, proxy or Tor",
			EventLoginThreat: "Login from a known threat address", EventSessionTerminated: "Session terminated",
			EventUserBlocked: "User blocked",
		},
		Intro: map[string]string{
			EventLoginSuccess: "A user logged in.", EventLoginSuspicious: "A login scored a low security score.",
			EventLoginNewLocation:  "A user logged in from a country not seen in their recent sessions.",
			EventLoginVPN:          "A user logged in through an anonymising network.",
			EventLoginThreat:       "A user logged in from an address on the threat list.",
			EventSessionTerminated: "A session was terminated.", EventUserBlocked: "A user was blocked and their sessions ended.",
		},
		Labels: map[string]string{
			"user": "User", "time": "Time", "ip": "IP address", "location": "Location", "device": "Device",
			"score": "Security score", "reasons": "Reasons", "session": "Session", "reason": "Reason",
			"denied": "The login was refused", "footer": "Sent by meshsession.",
		},
	},
	"de": {
		Titles: map[string]string{
			EventLoginSuccess: "Neue Anmeldung", EventLoginSuspicious: "Verdächtige Anmeldung",
			EventLoginNewLocation: "Anmeldung von einem neuen Ort", EventLoginVPN: "Anmeldung über VPN, Proxy oder Tor",
			EventLoginThreat: "Anmeldung von einer bekannten Bedrohungsadresse", EventSessionTerminated: "Sitzung beendet",
			EventUserBlocked: "Benutzer gesperrt",
		},
		Intro: map[string]string{
			EventLoginSuccess: "Ein Benutzer hat sich angemeldet.", EventLoginSuspicious: "Eine Anmeldung hat eine niedrige Sicherheitsbewertung.",
			EventLoginNewLocation:  "Ein Benutzer hat sich aus einem Land angemeldet, das in seinen letzten Sitzungen nicht vorkam.",
			EventLoginVPN:          "Ein Benutzer hat sich über ein anonymisierendes Netz angemeldet.",
			EventLoginThreat:       "Ein Benutzer hat sich von einer Adresse auf der Bedrohungsliste angemeldet.",
			EventSessionTerminated: "Eine Sitzung wurde beendet.", EventUserBlocked: "Ein Benutzer wurde gesperrt und seine Sitzungen beendet.",
		},
		Labels: map[string]string{
			"user": "Benutzer", "time": "Zeit", "ip": "IP-Adresse", "location": "Ort", "device": "Gerät",
			"score": "Sicherheitsbewertung", "reasons": "Gründe", "session": "Sitzung", "reason": "Grund",
			"denied": "Die Anmeldung wurde abgelehnt", "footer": "Gesendet von meshsession.",
		},
	},
	"es": {
		Titles: map[string]string{
			EventLoginSuccess: "Nuevo inicio de sesión", EventLoginSuspicious: "Inicio de sesión sospechoso",
			EventLoginNewLocation: "Inicio de sesión desde una nueva ubicación", EventLoginVPN: "Inicio de sesión a través de VPN, proxy o Tor",
			EventLoginThreat: "Inicio de sesión desde una dirección peligrosa conocida", EventSessionTerminated: "Sesión terminada",
			EventUserBlocked: "Usuario bloqueado",
		},
		Intro: map[string]string{
			EventLoginSuccess: "Un usuario inició sesión.", EventLoginSuspicious: "Un inicio de sesión obtuvo una puntuación de seguridad baja.",
			EventLoginNewLocation:  "Un usuario inició sesión desde un país que no aparece en sus sesiones recientes.",
			EventLoginVPN:          "Un usuario inició sesión a través de una red anonimizadora.",
			EventLoginThreat:       "Un usuario inició sesión desde una dirección de la lista de amenazas.",
			EventSessionTerminated: "Se terminó una sesión.", EventUserBlocked: "Se bloqueó a un usuario y se cerraron sus sesiones.",
		},
		Labels: map[string]string{
			"user": "Usuario", "time": "Hora", "ip": "Dirección IP", "location": "Ubicación", "device": "Dispositivo",
			"score": "Puntuación de seguridad", "reasons": "Motivos", "session": "Sesión", "reason": "Motivo",
			"denied": "El inicio de sesión fue rechazado", "footer": "Enviado por meshsession.",
		},
	},
	"fr": {
		Titles: map[string]string{
			EventLoginSuccess: "Nouvelle connexion", EventLoginSuspicious: "Connexion suspecte",
			EventLoginNewLocation: "Connexion depuis un nouveau lieu", EventLoginVPN: "Connexion via VPN, proxy ou Tor",
			EventLoginThreat: "Connexion depuis une adresse malveillante connue", EventSessionTerminated: "Session terminée",
			EventUserBlocked: "Utilisateur bloqué",
		},
		Intro: map[string]string{
			EventLoginSuccess: "Un utilisateur s'est connecté.", EventLoginSuspicious: "Une connexion a obtenu un score de sécurité faible.",
			EventLoginNewLocation:  "Un utilisateur s'est connecté depuis un pays absent de ses sessions récentes.",
			EventLoginVPN:          "Un utilisateur s'est connecté via un réseau d'anonymisation.",
			EventLoginThreat:       "Un utilisateur s'est connecté depuis une adresse de la liste des menaces.",
			EventSessionTerminated: "Une session a été terminée.", EventUserBlocked: "Un utilisateur a été bloqué et ses sessions fermées.",
		},
		Labels: map[string]string{
			"user": "Utilisateur", "time": "Heure", "ip": "Adresse IP", "location": "Lieu", "device": "Appareil",
			"score": "Score de sécurité", "reasons": "Raisons", "session": "Session", "reason": "Motif",
			"denied": "La connexion a été refusée", "footer": "Envoyé par meshsession.",
		},
	},
	"pt": {
		Titles: map[string]string{
			EventLoginSuccess: "Novo login", EventLoginSuspicious: "Login suspeito",
			EventLoginNewLocation: "Login de um novo local", EventLoginVPN: "Login via VPN, proxy ou Tor",
			EventLoginThreat: "Login de um endereço de ameaça conhecido", EventSessionTerminated: "Sessão encerrada",
			EventUserBlocked: "Usuário bloqueado",
		},
		Intro: map[string]string{
			EventLoginSuccess: "Um usuário fez login.", EventLoginSuspicious: "Um login obteve uma pontuação de segurança baixa.",
			EventLoginNewLocation:  "Um usuário fez login de um país que não aparece nas suas sessões recentes.",
			EventLoginVPN:          "Um usuário fez login através de uma rede de anonimização.",
			EventLoginThreat:       "Um usuário fez login de um endereço da lista de ameaças.",
			EventSessionTerminated: "Uma sessão foi encerrada.", EventUserBlocked: "Um usuário foi bloqueado e as suas sessões encerradas.",
		},
		Labels: map[string]string{
			"user": "Usuário", "time": "Hora", "ip": "Endereço IP", "location": "Local", "device": "Dispositivo",
			"score": "Pontuação de segurança", "reasons": "Motivos", "session": "Sessão", "reason": "Motivo",
			"denied": "O login foi recusado", "footer": "Enviado por meshsession.",
		},
	},
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
