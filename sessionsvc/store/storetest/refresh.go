package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/protocol"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// testCheckRefresh: CheckRefresh judges a refresh the upstream refused. It
// refuses the keys of an ended session with the session's termination
// reason, treats a rotated key of a live session as reuse (the session
// ends), allows the keys of a live session without rotating anything, and
// answers ErrNotFound for keys no session knows.
func testCheckRefresh(t *testing.T, st store.Store) {
	now := t0.Add(time.Minute)

	t.Run("live session allowed, nothing rotated or logged", func(t *testing.T) {
		s := newSession(t, st, "u", "live", t0)
		before := allChanges(t, st, 0, now)
		out, err := st.CheckRefresh(ctx(), []string{"fp:r-live"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Allowed: true}, out)
		assert.Equal(t, before, allChanges(t, st, 0, now), "an allowed check logs nothing")
		got, err := st.GetSession(ctx(), s.ID)
		require.NoError(t, err)
		assert.True(t, got.Active)
		// The key was not rotated: a successful refresh may still present it.
		out, err = st.Refresh(ctx(), []string{"fp:r-live"}, []store.SessionKey{{Key: "fp:r2-live", Kind: store.KeyRefresh}}, now)
		require.NoError(t, err)
		assert.True(t, out.Allowed, "CheckRefresh must not rotate the presented key")
	})

	t.Run("rotated key of a live session is reuse", func(t *testing.T) {
		s := newSession(t, st, "u", "reuse", t0)
		out, err := st.Refresh(ctx(), []string{"fp:r-reuse"}, []store.SessionKey{{Key: "fp:r2-reuse", Kind: store.KeyRefresh}}, now)
		require.NoError(t, err)
		require.True(t, out.Allowed)

		out, err = st.CheckRefresh(ctx(), []string{"fp:r-reuse"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: protocol.ReasonReuse}, out)
		got, err := st.GetSession(ctx(), s.ID)
		require.NoError(t, err)
		assert.False(t, got.Active)
		assert.Equal(t, protocol.ReasonReuse, got.TerminationReason)
		revoked := map[string]string{}
		for _, c := range allChanges(t, st, 0, now) {
			revoked[c.Key] = c.Reason
		}
		for _, k := range []string{"sid:reuse", "fp:a-reuse", "fp:r-reuse", "fp:r2-reuse"} {
			assert.Equal(t, protocol.ReasonReuse, revoked[k], "%s revoked for reuse", k)
		}

		// The newest refresh token of the ended session is refused too.
		out, err = st.CheckRefresh(ctx(), []string{"fp:r2-reuse"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: protocol.ReasonReuse}, out)
	})

	t.Run("ended session refused with its reason", func(t *testing.T) {
		// Each ender ends the session named name; the idle and expired
		// sessions are the only ones old enough for EndIdle and EndOld.
		enders := []struct {
			name, reason string
			login        time.Time
			end          func(s *store.Session) error
		}{
			{"logout", protocol.ReasonLogout, t0, func(s *store.Session) error {
				_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonLogout, false, now)
				return err
			}},
			{"manual", protocol.ReasonManual, t0, func(s *store.Session) error {
				_, err := st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonManual, true, now)
				return err
			}},
			{"blocked", protocol.ReasonBlocked, t0, func(s *store.Session) error {
				return st.SetBlocked(ctx(), s.UserID, true, now)
			}},
			{"expired", protocol.ReasonExpired, t0.Add(-48 * time.Hour), func(*store.Session) error {
				_, err := st.EndOld(ctx(), t0.Add(-24*time.Hour), now)
				return err
			}},
			{"idle", protocol.ReasonIdle, t0.Add(-12 * time.Hour), func(*store.Session) error {
				_, err := st.EndIdle(ctx(), t0.Add(-6*time.Hour), now)
				return err
			}},
		}
		for _, e := range enders {
			s := newSession(t, st, "user-"+e.name, e.name, e.login)
			require.NoError(t, e.end(s), e.name)
			out, err := st.CheckRefresh(ctx(), []string{"fp:r-" + e.name}, now)
			require.NoError(t, err, e.name)
			assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: e.reason}, out, e.name)
			got, err := st.GetSession(ctx(), s.ID)
			require.NoError(t, err)
			assert.Equal(t, e.reason, got.TerminationReason, "%s: the check keeps the session's reason", e.name)
		}
	})

	t.Run("rotated key of an ended session keeps the session's reason", func(t *testing.T) {
		s := newSession(t, st, "u", "rotout", t0)
		_, err := st.Refresh(ctx(), []string{"fp:r-rotout"}, []store.SessionKey{{Key: "fp:r2-rotout", Kind: store.KeyRefresh}}, now)
		require.NoError(t, err)
		_, err = st.EndSessions(ctx(), store.EndFilter{SessionIDs: []string{s.ID}}, protocol.ReasonLogout, false, now)
		require.NoError(t, err)
		out, err := st.CheckRefresh(ctx(), []string{"fp:r-rotout"}, now)
		require.NoError(t, err)
		assert.Equal(t, store.RefreshOutcome{SessionID: s.ID, Reason: protocol.ReasonLogout}, out)
	})

	t.Run("unknown keys are ErrNotFound", func(t *testing.T) {
		for _, keys := range [][]string{{"fp:nobody"}, {}, {""}} {
			_, err := st.CheckRefresh(ctx(), keys, now)
			assert.ErrorIs(t, err, store.ErrNotFound, "%q", keys)
		}
		// A deleted session's keys name nothing any more.
		s := newSession(t, st, "u", "deleted", t0)
		require.NoError(t, st.DeleteSession(ctx(), s.ID, now))
		_, err := st.CheckRefresh(ctx(), []string{"fp:r-deleted"}, now)
		assert.ErrorIs(t, err, store.ErrNotFound)
	})
}
