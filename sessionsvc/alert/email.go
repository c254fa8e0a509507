package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// SMTP TLS modes.
const (
	TLSStartTLS = "starttls" // upgrade with STARTTLS when the server offers it (default)
	TLSRequire  = "starttls-required"
	TLSImplicit = "tls"  // TLS from the first byte (port 465)
	TLSNone     = "none" // never TLS (a local relay)
)

// SMTPConfig configures email alerts.
type SMTPConfig struct {
	Host     string
	Port     int // default 587 (465 with TLSImplicit)
	Username string
	Password string
	From     string
	To       []string
	TLS      string // TLSStartTLS (default), TLSRequire, TLSImplicit, TLSNone
	// TLSConfig overrides the TLS client configuration (tests, private CAs).
	TLSConfig *tls.Config
	// Timeout bounds the whole conversation (default 30 s; the context's deadline wins when sooner).
	Timeout time.Duration
	// HelloName is sent in EHLO (default "localhost").
	HelloName string
	// Events mailed (empty = all).
	Events []string
	// Templates override the built-in mails per event (see CompileTemplates).
	Templates map[string]Template
}

// Email sends alerts by SMTP.
type Email struct {
	cfg       SMTPConfig
	templates Templates
	// OnTemplateError is told when a custom template fails and the built-in mail is sent instead.
	OnTemplateError func(event string, err error)
}

// NewEmail checks cfg and returns the sender.
func NewEmail(cfg SMTPConfig) (*Email, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is required")
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSRequire, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("smtp: tls mode %q is not one of starttls, starttls-required, tls, none", cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: port %d out of range", cfg.Port)
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: from address %q: %w", cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return nil, errors.New("smtp: at least one recipient is required")
	}
	for _, to := range cfg.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return nil, fmt.Errorf("smtp: recipient %q: %w", to, err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	ts, err := CompileTemplates(cfg.Templates)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return &Email{cfg: cfg, templates: ts}, nil
}

// Send mails the alert to the configured recipients. 5xx answers from the
// server are permanent failures; everything else is retried.
func (e *Email) Send(ctx context.Context, a store.Alert, p Payload) error {
	subject, text, html, terrs := e.templates.render(p)
	if len(terrs) > 0 && e.OnTemplateError != nil {
		e.OnTemplateError(p.Event, errors.Join(terrs...))
	}
	msg, err := buildMail(e.cfg.From, e.cfg.To, mailParts{
		Subject: subject, Text: text, HTML: html, Locale: PickLocale(p.Locale), Event: p.Event,
	}, a, time.Now())
	if err != nil {
		return Permanent(fmt.Errorf("build mail: %w", err))
	}
	if err := e.deliver(ctx, msg); err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) && tp.Code >= 500 {
			return Permanent(fmt.Errorf("smtp %s:%d refused: %w", e.cfg.Host, e.cfg.Port, err))
		}
		return fmt.Errorf("smtp %s:%d: %w", e.cfg.Host, e.cfg.Port, err)
	}
	return nil
}

func (e *Email) tlsConfig() *tls.Config {
	if e.cfg.TLSConfig != nil {
		c := e.cfg.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = e.cfg.Host
		}
		return c
	}
	return &tls.Config{ServerName: e.cfg.Host, MinVersion: tls.VersionTLS12}
}

func (e *Email) deliver(ctx context.Context, msg []byte) error {
	deadline := time.Now().Add(e.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	addr := net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port))
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if e.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: e.tlsConfig()}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// Abort the conversation when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, e.cfg.Host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(e.cfg.HelloName); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if e.cfg.TLS == TLSStartTLS || e.cfg.TLS == TLSRequire {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(e.tlsConfig()); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		} else if e.cfg.TLS == TLSRequire {
			return errors.New("server does not offer STARTTLS and tls is starttls-required")
		}
	}
	if e.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("server does not offer AUTH but a username is configured")
		}
		// PlainAuth refuses to send the password without TLS unless the host is local.
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.cfg.Host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(bareAddress(e.cfg.From)); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	for _, to := range e.cfg.To {
		if err := c.Rcpt(bareAddress(to)); err != nil {
			return fmt.Errorf("rcpt to %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted at the end of DATA; a failed QUIT does not unsend it.
		return nil
	}
	return nil
}

func bareAddress(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return s
	}
	return a.Address
}

type mailParts struct {
	Subject, Text, HTML, Locale, Event string
}

// buildMail renders a multipart/alternative (text + HTML) message.
func buildMail(from string, to []string, m mailParts, a store.Alert, now time.Time) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ ctype, content string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	domain := "meshsession.local"
	if addr, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(addr.Address, '@'); i >= 0 {
			domain = addr.Address[i+1:]
		}
	}
	var h bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&h, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject, 200)))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<alert-%d-%s@%s>", a.ID, hex.EncodeToString(id), domain))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	hdr("Content-Language", m.Locale)
	hdr("X-Meshsession-Event", oneLine(m.Event, 64))
	hdr("Auto-Submitted", "auto-generated")
	h.WriteString("\r\n")
	h.Write(body.Bytes())
	return h.Bytes(), nil
}
