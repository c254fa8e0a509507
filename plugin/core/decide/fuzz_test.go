package decide_test

import (
	"testing"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/core/decide"
	"github.com/meshsession/meshsession/plugin/core/token"
	"github.com/meshsession/meshsession/plugin/protocol"
)

// FuzzDecide feeds arbitrary headers and metadata to every mode: a decision
// is always well-formed and a refusal always has a status and a reason.
func FuzzDecide(f *testing.F) {
	f.Add("/api", "Bearer "+jwttest.HS256("k", hsHeader, payload("")), "", "")
	f.Add("/api", "Bearer a.b.c", "jwt=x.y.z", `{"sid":1}`)
	f.Add("/healthz", "bearer", "jwt=", "{")
	f.Add("/api", "Bearer "+jwttest.HS256("k", hsHeader, payload(""))+"=", "jwt=a; jwt=b", `{"sid":"a","sid":"b"}`)
	engines := []*decide.Engine{
		engine(f, ``),
		engine(f, `{"require_token":true,"stale_policy":"fail_closed"}`),
		engine(f, `{"verify":{"mode":"hs256","secret":"k"}}`),
		engine(f, `{"verify":{"mode":"jwt_authn_metadata"}}`),
	}
	st := state(f, protocol.Change{Op: protocol.OpRevoke, Key: "sid:s1", Reason: "manual"})
	f.Fuzz(func(t *testing.T, path, auth, cookie, metadata string) {
		for _, e := range engines {
			d := e.Decide(now, &decide.Request{Path: path, Authorization: auth, Cookie: cookie, Metadata: metadata, LastSync: now}, st)
			switch d.Action {
			case decide.Pass:
				if d.Status != 0 || d.Reason != "" {
					t.Fatalf("pass with status %d reason %q", d.Status, d.Reason)
				}
				// A token that passes has one spelling, and the
				// identity it vouches for is printable.
				if tok, src, _ := token.Find(auth, cookie, "jwt"); d.HasToken && src != token.SourceNone {
					if err := token.CheckCanonical(tok); err != nil {
						t.Fatalf("non-canonical token %q passed: %v", tok, err)
					}
				}
				if !token.ValidID(d.SessionID) || !token.ValidID(d.UserID) {
					t.Fatalf("unprintable identity passed: %q %q", d.SessionID, d.UserID)
				}
			case decide.Refuse:
				if d.Status != 401 && d.Status != 403 && d.Status != 503 {
					t.Fatalf("bad status %d", d.Status)
				}
				if d.Reason == "" || d.Message == "" || len(d.Body()) == 0 {
					t.Fatalf("refusal without reason/message: %+v", d)
				}
			default:
				t.Fatalf("bad action %d", d.Action)
			}
		}
	})
}
