package alert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// mailServer is a real SMTP server in the test process.
type mailServer struct {
	srv  *smtp.Server
	addr *net.TCPAddr
	pool *x509.CertPool

	mu       sync.Mutex
	messages []received
	rcptErr  error // answer to RCPT TO
	dataErr  error
	delay    time.Duration // before answering MAIL FROM
	user     string
	password string
	tls      bool
}

type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	Auth bool
}

type mailSession struct {
	s    *mailServer
	conn *smtp.Conn
	msg  received
}

func (m *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (m *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != m.s.user || pass != m.s.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		m.msg.Auth = true
		return nil
	}), nil
}

func (m *mailSession) Reset()        { m.msg = received{Auth: m.msg.Auth} }
func (m *mailSession) Logout() error { return nil }

func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	m.s.mu.Lock()
	d := m.s.delay
	m.s.mu.Unlock()
	time.Sleep(d)
	m.msg.From = from
	_, m.msg.TLS = m.conn.TLSConnectionState()
	return nil
}

func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.s.rcptErr != nil {
		return m.s.rcptErr
	}
	m.msg.To = append(m.msg.To, to)
	return nil
}

func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.s.dataErr != nil {
		return m.s.dataErr
	}
	m.msg.Data = b
	m.s.messages = append(m.s.messages, m.msg)
	return nil
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func startMailServer(t testing.TB, withTLS bool) *mailServer {
	t.Helper()
	ms := &mailServer{user: "alerts", password: "s3cret", tls: withTLS}
	ms.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{s: ms, conn: c}, nil
	}))
	ms.srv.Domain = "localhost"
	ms.srv.ReadTimeout = 10 * time.Second
	ms.srv.WriteTimeout = 10 * time.Second
	if withTLS {
		cert, pool := selfSigned(t)
		ms.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ms.pool = pool
	} else {
		ms.srv.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ms.addr = l.Addr().(*net.TCPAddr)
	go func() { _ = ms.srv.Serve(l) }()
	t.Cleanup(func() { _ = ms.srv.Close() })
	return ms
}

func (ms *mailServer) config() SMTPConfig {
	c := SMTPConfig{Host: "127.0.0.1", Port: ms.addr.Port, From: "meshsession <alerts@example.com>", To: []string{"ops@example.com", "sec@example.com"}, Timeout: 5 * time.Second}
	if ms.tls {
		c.TLSConfig = &tls.Config{RootCAs: ms.pool}
		c.Username, c.Password = ms.user, ms.password
		c.TLS = TLSRequire
	}
	return c
}

func (ms *mailServer) received() []received {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.messages...)
}

func samplePayload() Payload {
	score := 45
	return Payload{
		Event: EventLoginSuspicious, At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), UserID: "alice",
		IP: "81.2.69.142", Browser: "Chrome 131", OS: "Windows 10", Device: "desktop",
		Geo:   &store.GeoLocation{City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB"},
		Score: &score, Risk: "high", Reasons: []string{"new country GB", "<script>alert(1)</script>"}, Locale: "de-DE",
	}
}

// parseMail returns the subject and the decoded text and html parts.
func parseMail(t *testing.T, data []byte) (subject, text, html string, hdr mail.Header) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	require.NoError(t, err)
	dec := new(mime.WordDecoder)
	subject, err = dec.DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p) // multipart decodes quoted-printable
		require.NoError(t, err)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			html = string(b)
		} else {
			text = string(b)
		}
	}
	return subject, text, html, m.Header
}

func TestEmailPlain(t *testing.T) {
	ms := startMailServer(t, false)
	e, err := NewEmail(ms.config())
	require.NoError(t, err)
	require.NoError(t, e.Send(context.Background(), store.Alert{ID: 7, Event: EventLoginSuspicious}, samplePayload()))

	got := ms.received()
	require.Len(t, got, 1)
	assert.Equal(t, "alerts@example.com", got[0].From)
	assert.Equal(t, []string{"ops@example.com", "sec@example.com"}, got[0].To)
	assert.False(t, got[0].TLS)
	subject, text, html, hdr := parseMail(t, got[0].Data)
	assert.Equal(t, "[meshsession] Verdächtige Anmeldung: alice", subject, "German chosen from de-DE")
	assert.Contains(t, text, "Sicherheitsbewertung: 45/100 (high)")
	assert.Contains(t, text, "Ort: London, England, United Kingdom")
	assert.Contains(t, html, "&lt;script&gt;", "html escapes values")
	assert.NotContains(t, html, "<script>")
	assert.Equal(t, "de", hdr.Get("Content-Language"))
	assert.Contains(t, hdr.Get("Message-ID"), "alert-7-")
}

func TestEmailStartTLSAndAuth(t *testing.T) {
	ms := startMailServer(t, true)
	e, err := NewEmail(ms.config())
	require.NoError(t, err)
	p := samplePayload()
	p.Locale = "xx"
	require.NoError(t, e.Send(context.Background(), store.Alert{ID: 1}, p))
	got := ms.received()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS, "upgraded with STARTTLS")
	assert.True(t, got[0].Auth)
	subject, _, _, _ := parseMail(t, got[0].Data)
	assert.Equal(t, "[meshsession] Suspicious login: alice", subject, "unknown locale falls back to en")

	// Wrong password: the server refuses (535) -> permanent.
	cfg := ms.config()
	cfg.Password = "wrong"
	e, err = NewEmail(cfg)
	require.NoError(t, err)
	err = e.Send(context.Background(), store.Alert{ID: 2}, p)
	require.Error(t, err)
	assert.True(t, IsPermanent(err))

	// Untrusted certificate: a transient failure, clearly reported.
	cfg = ms.config()
	cfg.TLSConfig = nil
	e, err = NewEmail(cfg)
	require.NoError(t, err)
	err = e.Send(context.Background(), store.Alert{ID: 3}, p)
	require.ErrorContains(t, err, "starttls")
}

func TestEmailStartTLSRequiredButNotOffered(t *testing.T) {
	ms := startMailServer(t, false)
	cfg := ms.config()
	cfg.TLS = TLSRequire
	e, err := NewEmail(cfg)
	require.NoError(t, err)
	err = e.Send(context.Background(), store.Alert{ID: 1}, samplePayload())
	require.ErrorContains(t, err, "does not offer STARTTLS")
	assert.Empty(t, ms.received())
}

func TestEmailRefusals(t *testing.T) {
	ms := startMailServer(t, false)
	e, err := NewEmail(ms.config())
	require.NoError(t, err)

	ms.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	err = e.Send(context.Background(), store.Alert{ID: 1}, samplePayload())
	require.Error(t, err)
	assert.True(t, IsPermanent(err), "5xx is permanent")
	assert.Contains(t, err.Error(), "no such user")

	ms.rcptErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	err = e.Send(context.Background(), store.Alert{ID: 1}, samplePayload())
	require.Error(t, err)
	assert.False(t, IsPermanent(err), "4xx is retried")

	ms.rcptErr = nil
	ms.dataErr = &smtp.SMTPError{Code: 554, Message: "spam"}
	err = e.Send(context.Background(), store.Alert{ID: 1}, samplePayload())
	assert.True(t, IsPermanent(err))
	assert.Empty(t, ms.received())
}

func TestEmailUnreachableAndSlow(t *testing.T) {
	// Nothing listens: connection refused, retried.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	e, err := NewEmail(SMTPConfig{Host: "127.0.0.1", Port: port, From: "a@example.com", To: []string{"b@example.com"}})
	require.NoError(t, err)
	err = e.Send(context.Background(), store.Alert{ID: 1}, samplePayload())
	require.ErrorContains(t, err, "connect")
	assert.False(t, IsPermanent(err))

	// A server that stalls is cut off by the context.
	ms := startMailServer(t, false)
	ms.delay = time.Second
	e, err = NewEmail(ms.config())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.Send(ctx, store.Alert{ID: 1}, samplePayload())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestNewEmailValidates(t *testing.T) {
	ok := SMTPConfig{Host: "mail", From: "a@example.com", To: []string{"b@example.com"}}
	_, err := NewEmail(ok)
	require.NoError(t, err)
	for name, mut := range map[string]func(*SMTPConfig){
		"host": func(c *SMTPConfig) { c.Host = "" },
		"from": func(c *SMTPConfig) { c.From = "nope" },
		"to":   func(c *SMTPConfig) { c.To = nil },
		"rcpt": func(c *SMTPConfig) { c.To = []string{"x"} },
		"tls":  func(c *SMTPConfig) { c.TLS = "maybe" },
		"port": func(c *SMTPConfig) { c.Port = 70000 },
	} {
		c := ok
		mut(&c)
		_, err := NewEmail(c)
		assert.Error(t, err, name)
	}
}

func TestChannelsFromEnv(t *testing.T) {
	env := map[string]string{
		EnvSMTPHost: "mail.example.com", EnvSMTPPort: "2525", EnvSMTPFrom: "alerts@example.com",
		EnvAlertEmailTo: "a@example.com, b@example.com", EnvWebhookURL: "https://hooks.example.com/x",
		EnvWebhookFormat: "slack",
	}
	c, err := ChannelsFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NotNil(t, c.Email)
	assert.Equal(t, 2525, c.Email.Port)
	assert.Equal(t, []string{"a@example.com", "b@example.com"}, c.Email.To)
	assert.Equal(t, []string{"email", "webhook:default"}, c.Names())
	senders, err := c.Build()
	require.NoError(t, err)
	assert.Len(t, senders, 2)

	env[EnvSMTPPort] = "smtp"
	_, err = ChannelsFromEnv(func(k string) string { return env[k] })
	assert.ErrorContains(t, err, EnvSMTPPort)
	env[EnvSMTPPort] = strconv.Itoa(25)
	env[EnvWebhookFormat] = "json"
	_, err = ChannelsFromEnv(func(k string) string { return env[k] })
	assert.ErrorContains(t, err, "signing secret")

	c, err = ChannelsFromEnv(func(string) string { return "" })
	require.NoError(t, err)
	assert.Empty(t, c.Names())
}
