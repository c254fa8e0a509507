package alert

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
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

type compiled struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
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
		if t.Subject != "" {
			if c.subject, err = texttemplate.New("subject").Option("missingkey=zero").Parse(t.Subject); err != nil {
				errs = append(errs, fmt.Errorf("email template %q subject: %w", key, err))
				continue
			}
		}
		if t.Text != "" {
			if c.text, err = texttemplate.New("text").Option("missingkey=zero").Parse(t.Text); err != nil {
				errs = append(errs, fmt.Errorf("email template %q text: %w", key, err))
				continue
			}
		}
		if t.HTML != "" {
			if c.html, err = htmltemplate.New("html").Option("missingkey=zero").Parse(t.HTML); err != nil {
				errs = append(errs, fmt.Errorf("email template %q html: %w", key, err))
				continue
			}
		}
		out.byEvent[event] = c
	}
	return out, errors.Join(errs...)
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
	if c.subject != nil {
		var b limitedBuffer
		if err := c.subject.Execute(&b, data); err != nil {
			errs = append(errs, fmt.Errorf("subject: %w", err))
		} else {
			subject = oneLine(strings.TrimSpace(b.String()), 200)
		}
	}
	if c.text != nil {
		var b limitedBuffer
		if err := c.text.Execute(&b, data); err != nil {
			errs = append(errs, fmt.Errorf("text: %w", err))
		} else {
			text = b.String()
		}
	}
	if c.html != nil {
		var b limitedBuffer
		if err := c.html.Execute(&b, data); err != nil {
			errs = append(errs, fmt.Errorf("html: %w", err))
		} else {
			html = b.String()
		}
	}
	return subject, text, html, errs
}
