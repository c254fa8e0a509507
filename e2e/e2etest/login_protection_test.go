package e2etest

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoginProtection: through plugin.wasm on the e2e host, with sessionsvc
// on SQLite and on PostgreSQL: five wrong passwords lock the identifier
// (the seed's maxFailedLogins); then the right and the wrong password get
// byte-identical 429 answers and the app receives neither; another
// identifier from the same address still logs in (the address has its
// own, higher threshold); an admin unlock lets the right password in.
func TestLoginProtection(t *testing.T) {
	onEachBackend(t, func(t *testing.T, sys *system, _ backend) {
		dev := newDevice(t, "127.0.0.4", uaLaptop)
		other := newDevice(t, "127.0.0.5", uaPhone)
		login := func(d *device, user, password string) resp {
			return d.do(t, req{method: "POST", url: sys.proxyURL + "/api/auth/local", worker: -1,
				body: map[string]string{"identifier": user, "password": password}})
		}

		for i := range 5 {
			r := login(dev, "bob", "wrong-"+strconv.Itoa(i))
			require.Equal(t, http.StatusBadRequest, r.status, "failure %d reaches the app: %s", i, r)
		}
		require.Equal(t, int64(5), sys.demo.LoginRequests())
		// The failure reports are sent after the answers: wait for the lock.
		sys.eventually(t, "bob locked", func() (bool, string) {
			r := sys.admin(t, "GET", "/magic-sessionmanager/lockouts")
			for _, l := range r.json("data").Array() {
				if l.Get("type").String() == "identifier" && l.Get("value").String() == "bob" {
					return l.Get("failures").Int() == 5, r.String()
				}
			}
			return false, r.String()
		})

		// Right and wrong password while locked: one answer. Retry-After
		// counts down in whole seconds, so a pair straddling a second
		// boundary is taken again (at most twice more).
		received := sys.demo.LoginRequests()
		var right, wrong resp
		for range 3 {
			right = login(dev, "bob", passwords["bob"])
			wrong = login(dev, "BOB ", "not-it")
			if right.header.Get("Retry-After") == wrong.header.Get("Retry-After") {
				break
			}
		}
		assert.Equal(t, received, sys.demo.LoginRequests(), "the app never receives a locked login")
		for _, r := range []resp{right, wrong} {
			assert.Equal(t, http.StatusTooManyRequests, r.status, r.String())
			assert.Equal(t, "locked", r.reason())
			assert.Equal(t, "TooManyRequestsError", r.json("error.name").String())
			assert.Equal(t, "Too many requests. Please try again later.", r.json("error.message").String())
			retry, err := strconv.Atoi(r.header.Get("Retry-After"))
			require.NoError(t, err)
			assert.True(t, retry > 0 && retry <= 15*60, "Retry-After %d", retry)
			assert.Equal(t, int64(retry), r.json("error.details.retryAfter").Int())
		}
		assert.Equal(t, string(right.body), string(wrong.body), "byte-identical bodies")
		rh, wh := right.header.Clone(), wrong.header.Clone()
		rh.Del("Date")
		wh.Del("Date")
		assert.Equal(t, rh, wh, "identical headers")

		// A spelling of the route the app's router may resolve to login
		// is checked too.
		r0 := dev.do(t, req{method: "POST", url: sys.proxyURL + "/API/auth/loca%6c/", worker: -1,
			body: map[string]string{"identifier": "bob", "password": passwords["bob"]}})
		assert.Equal(t, http.StatusTooManyRequests, r0.status, r0.String())

		// The identifier is locked from any address; the address is not
		// locked for others.
		r := login(other, "bob", passwords["bob"])
		assert.Equal(t, http.StatusTooManyRequests, r.status, r.String())
		assert.Equal(t, received, sys.demo.LoginRequests())
		sys.login(t, dev, "alice")

		// An admin lifts the lock: the right password gets in.
		d := &device{ua: "e2e-admin", client: http.DefaultClient}
		u := d.do(t, req{method: "POST", url: sys.svcURL() + "/magic-sessionmanager/lockouts/unlock", token: adminToken, worker: -1,
			body: map[string]string{"type": "identifier", "value": "Bob"}})
		require.Equal(t, http.StatusOK, u.status, u.String())
		sys.login(t, dev, "bob")

		audit := sys.admin(t, "GET", "/magic-sessionmanager/audit")
		require.Equal(t, http.StatusOK, audit.status, audit.String())
		events := audit.json("data.#.event").Array()
		require.Len(t, events, 2)
		assert.Equal(t, "lockout.unlocked", events[0].String())
		assert.Equal(t, "lockout.locked", events[1].String())

		// A rush of concurrent guesses: exactly the threshold reaches the
		// app (attempts in flight count), the rest get 429.
		before := sys.demo.LoginRequests()
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := range 20 {
			wg.Go(func() {
				r := login(other, "carol", "guess-"+strconv.Itoa(i))
				mu.Lock()
				codes[r.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		assert.Equal(t, int64(5), sys.demo.LoginRequests()-before, "exactly maxFailedLogins guesses reach the app: %v", codes)
		assert.Equal(t, map[int]int{http.StatusBadRequest: 5, http.StatusTooManyRequests: 15}, codes)
	})
}
