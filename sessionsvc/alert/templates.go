package alert

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"regexp"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
)

// Template is an operator's email template for one event. Subject and Text
// are text/template, HTML is html/template (values escaped); each executes
// with TemplateData. Empty parts use the built-in rendering.
type Template struct {
	Subject string
	Text    string
	HTML    string
}

// TemplateData is what custom templates see: the alert's Payload fields
// ({{.UserID}}, {{.IP}}, {{.Geo.City}}, {{.Score}}, …) and the built-in
// Message ({{.Message.Title}}, {{range .Message.Fields}}…).
type TemplateData struct {
	Payload
	Message Message
}

// templateKeys maps the Strapi plugin's template names to events.
var templateKeys = map[string]string{
	"suspiciousLogin": EventLoginSuspicious,
	"newLocation":     EventLoginNewLocation,
	"vpnProxy":        EventLoginVPN,
}

// maxTemplateOutput bounds what a custom template may produce.
const maxTemplateOutput = 256 << 10

// executor is a compiled template part: a Go template, or a Strapi
// plugin template ({{user.email}} placeholders, see upstreamPart).
type executor interface {
	Execute(w io.Writer, data any) error
}

type compiled struct {
	subject executor
	text    executor
	html    executor
}

// upstreamVar matches the Strapi plugin's placeholders
// (services/notifications.js replaceVariables).
var upstreamVar = regexp.MustCompile(`\{\{\s*(user\.email|user\.username|session\.loginTime|session\.ipAddress|session\.userAgent|geo\.city|geo\.country|geo\.timezone|reason\.isVpn|reason\.isProxy|reason\.isThreat|reason\.securityScore)\s*\}\}`)

// isUpstream reports whether a template part is written for the Strapi
// plugin: it uses its placeholders (which Go templates cannot parse).
func isUpstream(src string) bool { return upstreamVar.MatchString(src) }

// upstreamPart renders a Strapi plugin template: each placeholder becomes
// its value (HTML-escaped in an HTML part), the rest is kept as written.
type upstreamPart struct {
	src  string
	html bool
}

func (u upstreamPart) Execute(w io.Writer, data any) error {
	d, ok := data.(TemplateData)
	if !ok {
		return fmt.Errorf("upstream template: unexpected data %T", data)
	}
	vals := upstreamValues(d.Payload)
	out := upstreamVar.ReplaceAllStringFunc(u.src, func(m string) string {
		v := vals[upstreamVar.FindStringSubmatch(m)[1]]
		if u.html {
			return htmltemplate.HTMLEscapeString(v)
		}
		return v
	})
	_, err := io.WriteString(w, out)
	return err
}

// upstreamValues are the placeholder values, with the plugin's fallbacks
// ("N/A", "Unknown", "Yes"/"No", "0").
func upstreamValues(p Payload) map[string]string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	yes := func(b bool) string {
		if b {
			return "Yes"
		}
		return "No"
	}
	var city, country, tz string
	if p.Geo != nil {
		city, country, tz = p.Geo.City, p.Geo.Country, p.Geo.Timezone
	}
	at := "N/A"
	if !p.At.IsZero() {
		at = p.At.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	score := "0"
	if p.Score != nil {
		score = strconv.Itoa(*p.Score)
	}
	return map[string]string{
		"user.email": or(p.Email, "N/A"), "user.username": or(p.Username, "N/A"),
		"session.loginTime": at, "session.ipAddress": or(p.IP, "N/A"), "session.userAgent": or(p.UserAgent, "N/A"),
		"geo.city": or(city, "Unknown"), "geo.country": or(country, "Unknown"), "geo.timezone": or(tz, "Unknown"),
		"reason.isVpn": yes(p.IsVPN), "reason.isProxy": yes(p.IsProxy), "reason.isThreat": yes(p.IsThreat),
		"reason.securityScore": score,
	}
}

// Templates are compiled custom templates by event.
type Templates struct {
	byEvent map[string]compiled
}

// CompileTemplates compiles templates keyed by event ("login.suspicious")
// or by the Strapi plugin's names (suspiciousLogin, newLocation, vpnProxy).
// A template that does not compile is left out and reported.
func CompileTemplates(in map[string]Template) (Templates, error) {
	out := Templates{byEvent: map[string]compiled{}}
	var errs []error
	for key, t := range in {
		event := key
		if e, ok := templateKeys[key]; ok {
			event = e
		}
		if !KnownEvent(event) {
			errs = append(errs, fmt.Errorf("email template %q: unknown event", key))
			continue
		}
		if t.Subject == "" && t.Text == "" && t.HTML == "" {
			continue
		}
		var c compiled
		var err error
		if c.subject, err = compileText("subject", t.Subject); err != nil {
			errs = append(errs, fmt.Errorf("email template %q subject: %w", key, err))
			continue
		}
		if c.text, err = compileText("text", t.Text); err != nil {
			errs = append(errs, fmt.Errorf("email template %q text: %w", key, err))
			continue
		}
		if c.html, err = compileHTML(t.HTML); err != nil {
			errs = append(errs, fmt.Errorf("email template %q html: %w", key, err))
			continue
		}
		out.byEvent[event] = c
	}
	return out, errors.Join(errs...)
}

func compileText(name, src string) (executor, error) {
	switch {
	case src == "":
		return nil, nil
	case isUpstream(src):
		return upstreamPart{src: src}, nil
	}
	t, err := texttemplate.New(name).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	for _, d := range t.Templates() {
		if err := boundedRanges(d.Tree); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func compileHTML(src string) (executor, error) {
	switch {
	case src == "":
		return nil, nil
	case isUpstream(src):
		return upstreamPart{src: src, html: true}, nil
	}
	t, err := htmltemplate.New("html").Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	for _, d := range t.Templates() {
		if err := boundedRanges(d.Tree); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// errUnboundedRange: a range over something other than a field of the
// alert's data. Templates have no time bound once they run (the dispatcher
// waits for them), and a range over a number — {{range 3000000000}}, or
// over len of a long literal, nested — loops for minutes without writing
// the output that the size bound would stop.
var errUnboundedRange = errors.New("range may only go over a field of the alert ({{range .Message.Fields}})")

// boundedRanges refuses a template with a range over anything but a field
// of its data (.X.Y, $.X, $v.X).
func boundedRanges(t *parse.Tree) error {
	if t == nil || t.Root == nil {
		return nil
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.RangeNode:
			if !overDataField(n.Pipe) {
				return fmt.Errorf("line %d: %w", n.Line, errUnboundedRange)
			}
			if err := walk(n.List); err != nil {
				return err
			}
			return walk(n.ElseList)
		case *parse.IfNode:
			if err := walk(n.List); err != nil {
				return err
			}
			return walk(n.ElseList)
		case *parse.WithNode:
			if err := walk(n.List); err != nil {
				return err
			}
			return walk(n.ElseList)
		}
		return nil
	}
	return walk(t.Root)
}

// overDataField: the pipe is one field of the data, with no call.
func overDataField(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1 // $.X or $v.X, not a bare variable
	case *parse.ChainNode:
		_, ok := a.Node.(*parse.DotNode)
		return ok
	}
	return false
}

type limitedBuffer struct {
	bytes.Buffer
}

var errTooLong = errors.New("template output too long")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxTemplateOutput {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}

// render returns subject, text and html for p: custom parts where a
// template exists and executes, built-in otherwise (a failing custom
// template falls back, so an alert is never lost to a template typo).
func (ts Templates) render(p Payload) (subject, text, html string, errs []error) {
	m := Render(p)
	subject, text, html = m.Subject(), m.Plain(), m.HTML()
	c, ok := ts.byEvent[p.Event]
	if !ok {
		return subject, text, html, nil
	}
	data := TemplateData{Payload: p, Message: m}
	// execute runs one custom part into out; a failing one leaves out as
	// built and reports false.
	execute := func(part string, t interface{ Execute(io.Writer, any) error }, out *string) bool {
		var b limitedBuffer
		if err := t.Execute(&b, data); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
			return false
		}
		*out = b.String()
		return true
	}
	if c.subject != nil && execute("subject", c.subject, &subject) {
		subject = oneLine(strings.TrimSpace(subject), 200)
	}
	if c.text != nil {
		execute("text", c.text, &text)
	}
	if c.html != nil {
		execute("html", c.html, &html)
	}
	return subject, text, html, errs
}
