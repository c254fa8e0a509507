package e2etest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

const (
	uaLaptop = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	uaPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

	lastSeenInterval = time.Second
	maxStaleness     = 4 * time.Second
)

// e2eOverrides shortens the plugin's intervals for the tests and makes a
// stale revocation set fail closed.
func e2eOverrides() map[string]any {
	return map[string]any{
		"last_seen_interval": lastSeenInterval.String(),
		"max_staleness":      maxStaleness.String(),
		"stale_policy":       "fail_closed",
	}
}

// TestEndToEnd runs the whole scenario on SQLite and on PostgreSQL.
func TestEndToEnd(t *testing.T) {
	onEachBackend(t, func(t *testing.T, sys *system, _ backend) {
		scenario(t, sys)
	})
}

func scenario(t *testing.T, sys *system) {
	laptop := newDevice(t, "127.0.0.2", uaLaptop)
	phone := newDevice(t, "127.0.0.3", uaPhone)
	var aliceLaptop, alicePhone tokens

	t.Run("two devices log in and both sessions are listed", func(t *testing.T) {
		aliceLaptop = sys.login(t, laptop, "alice")
		alicePhone = sys.login(t, phone, "alice")
		var list []gjson.Result
		sys.eventually(t, "both sessions listed", func() (bool, string) {
			r := sys.get(t, laptop, aliceLaptop.jwt, "/api/magic-sessionmanager/my-sessions", -1)
			list = r.json("data").Array()
			return r.status == 200 && len(list) == 2, r.String()
		})
		byIP := map[string]gjson.Result{}
		for _, s := range list {
			byIP[s.Get("ipAddress").String()] = s
		}
		require.Contains(t, byIP, "127.0.0.2")
		require.Contains(t, byIP, "127.0.0.3")
		assert.Equal(t, uaLaptop, byIP["127.0.0.2"].Get("userAgent").String())
		assert.Equal(t, uaPhone, byIP["127.0.0.3"].Get("userAgent").String())
		assert.True(t, byIP["127.0.0.2"].Get("isCurrentSession").Bool(), "the laptop's own session is current")
		assert.False(t, byIP["127.0.0.3"].Get("isCurrentSession").Bool())
		for _, s := range list {
			assert.True(t, s.Get("isActive").Bool())
			assert.Equal(t, "1", s.Get("userId").String())
		}
	})

	t.Run("requests pass with identity headers the client cannot forge", func(t *testing.T) {
		for w := 0; w < workers; w++ {
			r := laptop.do(t, req{url: sys.proxyURL + "/api/articles", token: aliceLaptop.jwt, worker: w,
				headers: map[string]string{"X-User-Id": "999", "X-Session-Id": "forged"}})
			require.Equal(t, 200, r.status, r.String())
			assert.Equal(t, "1", r.header.Get("X-Echo-User-Id"))
			assert.NotEmpty(t, r.header.Get("X-Echo-Session-Id"))
			assert.NotEqual(t, "forged", r.header.Get("X-Echo-Session-Id"))
		}
		r := laptop.do(t, req{url: sys.proxyURL + "/api/echo", worker: -1,
			headers: map[string]string{"X-User-Id": "999", "X-Session-Id": "forged"}})
		require.Equal(t, 200, r.status, r.String())
		assert.False(t, r.json("headers.x-user-id").Exists(), "forged x-user-id stripped: %s", r.body)
		assert.False(t, r.json("headers.x-session-id").Exists(), "forged x-session-id stripped: %s", r.body)
	})

	t.Run("lastActive advances at most once per last_seen_interval", func(t *testing.T) {
		sid := sys.currentSession(t, laptop, aliceLaptop.jwt)
		first := sys.session(t, "1", sid).Get("lastActive").Time()
		marks0 := sys.counter("meshsession_activity_marks")
		// lastActive starts at the login time; marks then move it.
		var seen []time.Time
		note := func(la time.Time) {
			if !la.Equal(first) && (len(seen) == 0 || !la.Equal(seen[len(seen)-1])) {
				seen = append(seen, la)
			}
		}
		start := time.Now()
		for i := 0; time.Since(start) < 2500*time.Millisecond; i++ {
			r := sys.get(t, laptop, aliceLaptop.jwt, "/api/articles", i%workers)
			require.Equal(t, 200, r.status, r.String())
			if i%5 == 0 {
				note(sys.session(t, "1", sid).Get("lastActive").Time())
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)
		sys.eventually(t, "lastActive advanced twice", func() (bool, string) {
			la := sys.session(t, "1", sid).Get("lastActive").Time()
			note(la)
			return len(seen) >= 2, fmt.Sprint(seen)
		})
		// The shared throttle lets one mark per interval through, whichever
		// worker sees the request.
		marks := sys.counter("meshsession_activity_marks") - marks0
		maxMarks := int64(elapsed/lastSeenInterval) + 2
		assert.LessOrEqual(t, marks, maxMarks, "activity marks in %s", elapsed)
		assert.GreaterOrEqual(t, marks, int64(1))
		for i := 1; i < len(seen); i++ {
			assert.GreaterOrEqual(t, seen[i].Sub(seen[i-1]), lastSeenInterval-50*time.Millisecond,
				"lastActive moved twice within last_seen_interval: %v", seen)
		}
		assert.False(t, seen[len(seen)-1].After(time.Now()), "lastActive in the future")
	})

	t.Run("logout-others ends the other device", func(t *testing.T) {
		r := laptop.do(t, req{method: "POST", url: sys.proxyURL + "/api/magic-sessionmanager/logout-others", token: aliceLaptop.jwt, worker: -1})
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, phone, alicePhone.jwt, "/api/articles", "phone refused", refused(401, "logout"))
		sys.everyWorker(t, laptop, aliceLaptop.jwt, "/api/articles", "laptop still allowed", status(200))
	})

	t.Run("admin terminate: every worker refuses the token, and its refresh token", func(t *testing.T) {
		tok := sys.login(t, phone, "alice")
		sid := sys.currentSession(t, phone, tok.jwt)
		sys.everyWorker(t, phone, tok.jwt, "/api/articles", "allowed before", status(200))
		r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+sid+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		rs := sys.everyWorker(t, phone, tok.jwt, "/api/articles", "terminated", refused(401, "manual"))
		assert.Equal(t, "manual", rs[0].json("error.details.reason").String(), "%s", rs[0].body)
		r = sys.refresh(t, phone, tok.refresh)
		assert.Equal(t, 401, r.status, r.String())
		assert.Equal(t, "manual", r.reason())
		s := sys.session(t, "1", sid)
		assert.False(t, s.Get("isActive").Bool())
		assert.Equal(t, "manual", s.Get("terminationReason").String())
	})

	t.Run("toggle-block: 401 reason blocked on every route, unblock lets a new login in", func(t *testing.T) {
		bob := sys.login(t, phone, "bob")
		sys.everyWorker(t, phone, bob.jwt, "/api/articles", "allowed before", status(200))
		r := sys.admin(t, "POST", "/magic-sessionmanager/user/2/toggle-block")
		require.Equal(t, 200, r.status, r.String())
		for _, path := range []string{"/api/articles", "/api/users/me", "/api/echo", "/api/magic-sessionmanager/my-sessions", "/anything"} {
			sys.everyWorker(t, phone, bob.jwt, path, "blocked on "+path, refused(401, "blocked"))
		}
		r = sys.admin(t, "POST", "/magic-sessionmanager/user/2/toggle-block")
		require.Equal(t, 200, r.status, r.String())
		var again tokens
		sys.eventually(t, "bob can log in after unblock", func() (bool, string) {
			r := phone.do(t, req{method: "POST", url: sys.proxyURL + "/api/auth/local", worker: -1,
				body: map[string]string{"identifier": "bob", "password": passwords["bob"]}})
			again = tokens{jwt: r.json("jwt").String()}
			return r.status == 200 && again.jwt != "", r.String()
		})
		sys.everyWorker(t, phone, again.jwt, "/api/articles", "unblocked", status(200))
	})

	t.Run("logout-all ends every session of the user", func(t *testing.T) {
		other := sys.login(t, phone, "alice")
		sys.everyWorker(t, phone, other.jwt, "/api/articles", "allowed before", status(200))
		r := laptop.do(t, req{method: "POST", url: sys.proxyURL + "/api/magic-sessionmanager/logout-all", token: aliceLaptop.jwt, worker: -1})
		require.Equal(t, 200, r.status, r.String())
		refusedAny := func(r resp) bool { return r.status == 401 && r.reason() != "" }
		sys.everyWorker(t, laptop, aliceLaptop.jwt, "/api/articles", "laptop refused", refusedAny)
		sys.everyWorker(t, phone, other.jwt, "/api/articles", "phone refused", refusedAny)
		for _, s := range sys.userSessions(t, "1") {
			assert.False(t, s.Get("isActive").Bool(), "session %s still active", s.Get("sessionId"))
		}
	})

	t.Run("refresh-token reuse ends the session", func(t *testing.T) {
		carol := sys.login(t, laptop, "carol")
		sid := sys.currentSession(t, laptop, carol.jwt)
		r := sys.refresh(t, laptop, carol.refresh)
		require.Equal(t, 200, r.status, r.String())
		rotated := tokens{jwt: r.json("jwt").String(), refresh: r.json("refreshToken").String()}
		sys.everyWorker(t, laptop, rotated.jwt, "/api/articles", "rotated token allowed", status(200))
		r = sys.refresh(t, laptop, carol.refresh) // the old one again: reuse
		assert.NotEqual(t, 200, r.status, r.String())
		sys.everyWorker(t, laptop, rotated.jwt, "/api/articles", "session ended by reuse", refused(401, "reuse"))
		s := sys.session(t, "3", sid)
		assert.False(t, s.Get("isActive").Bool())
		assert.Equal(t, "reuse", s.Get("terminationReason").String())
		r = sys.refresh(t, laptop, rotated.refresh)
		assert.Equal(t, 401, r.status, "the rotated refresh token dies with the session: %s", r)
	})

	t.Run("sessionsvc down: revocations enforced, then max_staleness; restarted: catch-up", func(t *testing.T) {
		ended := sys.login(t, laptop, "carol")
		live := sys.login(t, phone, "carol")
		endedID := sys.currentSession(t, laptop, ended.jwt)
		liveID := sys.currentSession(t, phone, live.jwt)
		r := sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+endedID+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		sys.everyWorker(t, laptop, ended.jwt, "/api/articles", "terminated", refused(401, "manual"))
		sys.everyWorker(t, phone, live.jwt, "/api/articles", "live", status(200))

		sys.stopSessionsvc()
		stopped := time.Now()
		// Within max_staleness: decided from memory, as before (checked
		// only while surely within it: a stalled machine skips it).
		for w := 0; w < workers; w++ {
			r := sys.get(t, laptop, ended.jwt, "/api/articles", w)
			if time.Since(stopped) < maxStaleness-time.Second {
				assert.Equal(t, 401, r.status, "worker %d: %s", w, r)
				assert.Equal(t, "manual", r.reason(), "worker %d", w)
			} else {
				assert.NotEqual(t, 200, r.status, "worker %d: a revoked token passed: %s", w, r)
			}
			r = sys.get(t, phone, live.jwt, "/api/articles", w)
			if time.Since(stopped) < maxStaleness-time.Second {
				assert.Equal(t, 200, r.status, "worker %d: %s", w, r)
			}
		}
		// The user API is down with sessionsvc: the proxy says so.
		r = sys.get(t, phone, live.jwt, "/api/magic-sessionmanager/my-sessions", -1)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, r.String())
		// Past max_staleness, fail_closed: 503 for every token.
		sys.everyWorker(t, phone, live.jwt, "/api/articles", "stale", refused(503, "stale"))
		assert.GreaterOrEqual(t, time.Since(stopped), maxStaleness-time.Second, "stale too early")
		for w := 0; w < workers; w++ {
			r := sys.get(t, laptop, ended.jwt, "/api/articles", w)
			assert.NotEqual(t, 200, r.status, "worker %d: a revoked token passed while stale: %s", w, r)
		}

		sys.startSessionsvc()
		sys.everyWorker(t, phone, live.jwt, "/api/articles", "caught up", status(200))
		sys.everyWorker(t, laptop, ended.jwt, "/api/articles", "still terminated", refused(401, "manual"))
		// Nothing lost: every session and its end are still there.
		byID := map[string]gjson.Result{}
		for _, s := range sys.userSessions(t, "3") {
			byID[s.Get("sessionId").String()] = s
		}
		require.Contains(t, byID, endedID)
		require.Contains(t, byID, liveID)
		assert.Equal(t, "manual", byID[endedID].Get("terminationReason").String())
		assert.True(t, byID[liveID].Get("isActive").Bool())
		// And the feed goes on at its usual pace: a new revocation reaches
		// every worker within the propagation bound (sync_interval plus a
		// tick, with slack for a loaded machine), not after the outage's
		// retry backoff.
		r = sys.admin(t, "POST", "/magic-sessionmanager/sessions/"+liveID+"/terminate")
		require.Equal(t, 200, r.status, r.String())
		t0 := time.Now()
		sys.everyWorker(t, phone, live.jwt, "/api/articles", "terminated after restart", refused(401, "manual"))
		assert.Less(t, time.Since(t0), 3*time.Second, "revocation after sessionsvc came back took too long")
	})
}
