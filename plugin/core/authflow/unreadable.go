package authflow

import (
	"errors"

	"github.com/meshsession/meshsession/plugin/core/config"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// Answer is what the filter knows about a login answer's body.
type Answer struct {
	Body []byte
	// ContentEncoding is the answer's content-encoding header ("" when none).
	ContentEncoding string
	// TooLarge: the body went over MaxBodyLen (Body is then not read).
	TooLarge bool
}

// ReadLogin reads a 2xx login answer. When no session can be registered
// from it, why says what made it unreadable (protocol.Unreadable*): a
// compressed body (any content-encoding but identity), one over
// MaxBodyLen, one that is not JSON, or no token at the configured path.
func ReadLogin(a Answer, route config.LoginRoute) (l Login, why string) {
	if Encoded(a.ContentEncoding) {
		return Login{}, protocol.UnreadableCompressed
	}
	if a.TooLarge || len(a.Body) > MaxBodyLen {
		return Login{}, protocol.UnreadableTooLarge
	}
	l, err := ParseLogin(a.Body, route)
	switch {
	case err == nil:
		return l, ""
	case errors.Is(err, ErrNoToken):
		return Login{}, protocol.UnreadableNoToken
	case errors.Is(err, ErrTooLarge):
		return Login{}, protocol.UnreadableTooLarge
	}
	return Login{}, protocol.UnreadableNotJSON
}

// EncodeUnreadable encodes u as its JSON wire form.
func EncodeUnreadable(u protocol.UnreadableLogin) []byte { return encode(u) }

// ParseUnreadableResponse parses sessionsvc's answer about an unreadable
// login answer. The decision is required.
func ParseUnreadableResponse(body []byte) (protocol.UnreadableLoginResponse, error) {
	r, d, err := parseAnswer("unreadable-login answer", body)
	if err != nil {
		return protocol.UnreadableLoginResponse{}, err
	}
	return protocol.UnreadableLoginResponse{Decision: d, Reason: optString(r, "reason"), Message: optString(r, "message")}, nil
}
