package filter_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshsession/meshsession/internal/jwttest"
	"github.com/meshsession/meshsession/plugin/protocol"
)

const (
	testSecret = "filter-test-secret"
	testKey    = "filter-test-internal-key"
)

// stubSvc stands in for sessionsvc's internal API: a real HTTP server with a
// revocation log the test writes to, and a record of every call.
type stubSvc struct {
	srv *httptest.Server

	mu       sync.Mutex
	epoch    string
	log      []protocol.Change
	down     bool   // answer 503 to everything
	garbage  string // answer sync with this body (200)
	jsonOnly bool   // answer sync in JSON even when asked for binary (as an older sessionsvc would)
	// longPoll: sync honours wait= as sessionsvc does (an empty delta
	// waits for the log to move); moved is closed when it does. Without
	// it the stub answers at once, as an older sessionsvc would.
	longPoll bool
	moved    chan struct{}
	calls    map[string]int
	badKey   int
	requests // every request body received, by endpoint

	registerAnswer   protocol.RegisterResponse
	refreshAnswer    protocol.RefreshResponse
	unreadableAnswer protocol.UnreadableLoginResponse
	checkAnswer      protocol.LoginCheckResponse
	checkStatus      int // answer the login check with this status (0: 200)
}

func newStub(t *testing.T) *stubSvc {
	s := &stubSvc{epoch: "epoch-1", calls: map[string]int{},
		registerAnswer:   protocol.RegisterResponse{SessionID: "sess_test", Decision: protocol.DecisionAllow, Score: 100},
		refreshAnswer:    protocol.RefreshResponse{SessionID: "sess_test", Decision: protocol.DecisionAllow},
		checkAnswer:      protocol.LoginCheckResponse{Decision: protocol.DecisionAllow},
		unreadableAnswer: protocol.UnreadableLoginResponse{Decision: protocol.DecisionAllow}}
	s.srv = newStubServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func newStubServer(s *stubSvc) *httptest.Server {
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s.srv
}

func (s *stubSvc) clusters() map[string]string { return map[string]string{"sessionsvc": s.srv.URL} }

func (s *stubSvc) add(c protocol.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Seq = int64(len(s.log) + 1)
	s.log = append(s.log, c)
	s.logMoved()
}

// logMoved wakes the long-polls (caller holds s.mu).
func (s *stubSvc) logMoved() {
	if s.moved != nil {
		close(s.moved)
	}
	s.moved = make(chan struct{})
}

// waitPage is page with wait= honoured when longPoll is on: an empty
// delta (or the empty snapshot of an empty log at this epoch, as
// sessionsvc) waits, s.mu released, until the log moves, the wait passes
// or the caller goes away. The caller holds s.mu.
func (s *stubSvc) waitPage(r *http.Request) protocol.SyncPage {
	p := s.page(r)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	emptyLog := p.Reset && p.Cursor == 0 && r.URL.Query().Get("epoch") == s.epoch
	if !s.longPoll || wait <= 0 || len(p.Changes) > 0 || p.Reset && !emptyLog {
		return p
	}
	if s.moved == nil {
		s.moved = make(chan struct{})
	}
	moved := s.moved
	s.mu.Unlock()
	select {
	case <-moved:
	case <-time.After(wait):
	case <-r.Context().Done():
	}
	s.mu.Lock()
	return s.page(r)
}

func (s *stubSvc) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// requests are the bodies the stub received, by endpoint.
type requests struct {
	register   []protocol.RegisterRequest
	refresh    []protocol.RefreshRequest
	revoke     []protocol.RevokeRequest
	activity   []protocol.Activity
	failed     []protocol.FailedLogin
	checks     []protocol.LoginCheck
	unreadable []protocol.UnreadableLogin
}

// recorded is a copy of what the stub received.
func (s *stubSvc) recorded() requests {
	s.mu.Lock()
	defer s.mu.Unlock()
	return requests{
		register:   append([]protocol.RegisterRequest(nil), s.register...),
		refresh:    append([]protocol.RefreshRequest(nil), s.refresh...),
		revoke:     append([]protocol.RevokeRequest(nil), s.revoke...),
		activity:   append([]protocol.Activity(nil), s.activity...),
		failed:     append([]protocol.FailedLogin(nil), s.failed...),
		checks:     append([]protocol.LoginCheck(nil), s.checks...),
		unreadable: append([]protocol.UnreadableLogin(nil), s.unreadable...),
	}
}

func (s *stubSvc) set(fn func(s *stubSvc)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *stubSvc) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	if r.Header.Get(protocol.HeaderKey) != testKey {
		s.badKey++
		http.Error(w, `{"error":{"status":401,"message":"bad key"}}`, http.StatusUnauthorized)
		return
	}
	if s.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	dec := json.NewDecoder(r.Body)
	var out any
	ok := true
	switch r.URL.Path {
	case protocol.PathSync:
		s.serveSync(w, r)
		return
	case protocol.PathSessions:
		out, ok = s.registerAnswer, decodeAppend(w, dec, &s.register)
	case protocol.PathTokens:
		out, ok = s.refreshAnswer, decodeAppend(w, dec, &s.refresh)
	case protocol.PathUnreadable:
		out, ok = s.unreadableAnswer, decodeAppend(w, dec, &s.unreadable)
	case protocol.PathFailed:
		out, ok = protocol.FailedLoginResponse{}, decodeAppend(w, dec, &s.failed)
	case protocol.PathLoginCheck:
		out, ok = s.checkAnswer, decodeAppend(w, dec, &s.checks)
		if ok && s.checkStatus != 0 && s.checkStatus != 200 {
			http.Error(w, "check failed", s.checkStatus)
			return
		}
	case protocol.PathRevoke:
		if ok = decodeAppend(w, dec, &s.revoke); ok {
			exp := time.Now().Add(time.Hour).Unix()
			for _, k := range s.revoke[len(s.revoke)-1].Keys {
				s.log = append(s.log, protocol.Change{Seq: int64(len(s.log) + 1), Op: protocol.OpRevoke, Key: k, Exp: exp, Reason: protocol.ReasonLogout})
			}
			s.logMoved()
		}
		out = protocol.RevokeResponse{Found: true, SessionID: "sess_test"}
	case protocol.PathActivity:
		var batch []protocol.Activity
		if ok = decode(w, dec, &batch); ok {
			s.activity = append(s.activity, batch...)
		}
		out = protocol.ActivityResponse{Accepted: len(batch), Updated: len(batch)}
	default:
		http.NotFound(w, r)
		return
	}
	if !ok {
		return
	}
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// serveSync answers the revocation feed: garbage or JSON or binary pages.
func (s *stubSvc) serveSync(w http.ResponseWriter, r *http.Request) {
	if s.garbage != "" {
		w.Write([]byte(s.garbage))
		return
	}
	p := s.waitPage(r)
	if r.URL.Query().Get("format") == protocol.FormatBinary && !s.jsonOnly {
		b, err := protocol.AppendBinaryPage(nil, &p)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("content-type", protocol.ContentTypeBinaryPage)
		w.Write(b)
		return
	}
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(p)
}

// decode reads a request body into v, answering 400 when it does not fit.
func decode(w http.ResponseWriter, dec *json.Decoder, v any) bool {
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad body", 400)
		return false
	}
	return true
}

// decodeAppend reads a request body as a T and records it on *list.
func decodeAppend[T any](w http.ResponseWriter, dec *json.Decoder, list *[]T) bool {
	var v T
	if !decode(w, dec, &v) {
		return false
	}
	*list = append(*list, v)
	return true
}

// page answers the sync feed: a snapshot for cursor 0 or a foreign epoch,
// else the changes after cursor; limit changes a page.
func (s *stubSvc) page(r *http.Request) protocol.SyncPage {
	q := r.URL.Query()
	cursor, _ := strconv.ParseInt(q.Get("cursor"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = 1000
	}
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	p := protocol.SyncPage{Epoch: s.epoch, Now: time.Now().Unix(), Changes: []protocol.Change{}}
	if q.Get("epoch") != s.epoch {
		cursor = 0
	}
	p.Reset = cursor == 0
	p.Cursor = cursor
	if p.Reset {
		p.Total = int64(len(s.log)) // like sessionsvc: live entries, about
	}
	for _, c := range s.log {
		if c.Seq <= cursor {
			continue
		}
		// A snapshot lists lifts too, as sessionsvc's does: a lift is not
		// the same as "absent" (revocation/keep.go).
		if len(p.Changes) == limit {
			p.More = true
			break
		}
		p.Changes = append(p.Changes, c)
		p.Cursor = c.Seq
	}
	return p
}

// jwt signs an HS256 token with testSecret.
func jwt(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return jwttest.HS256(testSecret, `{"alg":"HS256","typ":"JWT"}`, string(b))
}

func userToken(user int, sid string) string {
	now := time.Now().Unix()
	c := map[string]any{"id": user, "sub": strconv.Itoa(user), "iat": now, "exp": now + 3600}
	if sid != "" {
		c["sid"] = sid
	}
	return jwt(c)
}

func bearer(tok string) [][2]string { return [][2]string{{"authorization", "Bearer " + tok}} }
