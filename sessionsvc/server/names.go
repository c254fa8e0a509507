package server

import (
	"context"
	"errors"
	"strings"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/secrets"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// Lookup-token kinds of the user's names.
const (
	lookupDoc   = "d"
	lookupName  = "u"
	lookupEmail = "e"
)

// maxNameLen bounds each name the login answer gives.
const maxNameLen = 320

func cleanName(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > maxNameLen || strings.ContainsAny(v, "\x00\r\n") {
		return ""
	}
	return v
}

// sealNames stores the user's names from a registration on sess: sealed
// with the keyring, plus their lookup tokens. Without a key the names are
// not kept (personal data is never stored in the clear).
func (s *Server) sealNames(sess *store.Session, req protocol.RegisterRequest) {
	kr := s.cfg.Keyring
	if !kr.Enabled() {
		return
	}
	var lookup []string
	for _, f := range []struct {
		kind, v string
		dst     *string
	}{
		{lookupDoc, cleanName(req.UserDocumentID), &sess.UserDocumentID},
		{lookupName, cleanName(req.Username), &sess.Username},
		{lookupEmail, cleanName(req.Email), &sess.UserEmail},
	} {
		if f.v == "" {
			continue
		}
		sealed, err := kr.Seal(f.v)
		if err != nil {
			s.log.Warn("sealing a user name failed; not stored", "err", err)
			continue
		}
		*f.dst = sealed
		lookup = append(lookup, kr.LookupToken(f.kind, f.v))
	}
	sess.UserLookup = strings.Join(lookup, " ")
}

// openName is a stored name in the clear ("" when absent or unreadable).
func openName(kr *secrets.Keyring, v string) string {
	if v == "" || !secrets.IsSealed(v) {
		return ""
	}
	pt, err := kr.Open(v)
	if err != nil {
		return ""
	}
	return pt
}

// searchLookup is the lookup tokens a search term matches exactly.
func searchLookup(kr *secrets.Keyring, term string) []string {
	var out []string
	for _, k := range []string{lookupDoc, lookupName, lookupEmail} {
		out = append(out, kr.LookupTokens(k, term)...)
	}
	return out
}

// userByDocumentID finds the user id a user documentId names ("" when
// no session names it).
func (s *Server) userByDocumentID(ctx context.Context, doc string) (string, error) {
	toks := s.cfg.Keyring.LookupTokens(lookupDoc, doc)
	if len(toks) == 0 {
		return "", nil
	}
	id, err := s.st.UserIDByLookup(ctx, toks)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return id, err
}
