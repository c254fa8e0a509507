package server

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/meshsession/meshsession/sessionsvc/store/storetest"
)

// The admin list pages by keyset cursor (meta.pagination.nextCursor) and
// says how its counts were made.
func TestAdminListCursorAndCounts(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnvWithStore(t, b.Open(t))
			opts := store.SeedOptions{N: 30, Now: time.Now().UTC()}
			require.NoError(t, store.Seed(context.Background(), e.st, opts, nil))
			seen := map[string]bool{}
			path := "/magic-sessionmanager/sessions?pageSize=10&sort=loginTime:desc"
			for page := 0; ; page++ {
				require.Less(t, page, 5)
				r := e.admin("GET", path, nil)
				require.Equal(t, 200, r.status, string(r.raw))
				meta := r.body["meta"].(map[string]any)
				assert.Equal(t, "maintained", meta["countMode"])
				assert.EqualValues(t, 30, meta["total"], "total: the whole selection (count: the sessions listed, as the Strapi plugin)")
				for _, s := range r.body["data"].([]any) {
					id, _ := s.(map[string]any)["id"].(string)
					if id == "" {
						id, _ = s.(map[string]any)["sessionId"].(string)
					}
					assert.False(t, seen[id], "no session twice")
					seen[id] = true
				}
				next, _ := meta["pagination"].(map[string]any)["nextCursor"].(string)
				if next == "" {
					break
				}
				path = "/magic-sessionmanager/sessions?pageSize=10&sort=loginTime:desc&cursor=" + url.QueryEscape(next)
			}
			assert.Len(t, seen, 30)
			r := e.admin("GET", "/magic-sessionmanager/sessions?cursor=bm9wZQ", nil)
			assert.Equal(t, 400, r.status, string(r.raw))
			// A filtered list counts (a short first page is its own count).
			s0, _ := store.SeedSession(0, opts)
			r = e.admin("GET", "/magic-sessionmanager/sessions?userId="+url.QueryEscape(s0.UserID), nil)
			require.Equal(t, 200, r.status, string(r.raw))
			assert.Equal(t, "exact", r.body["meta"].(map[string]any)["countMode"])
		})
	}
}
