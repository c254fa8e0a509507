package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// testSessionLookups: SessionAppIDs names each session as the app sees it
// (the session claim, else the newest access-token key); UserIDByLookup
// finds the user of the newest session holding a lookup token.
func testSessionLookups(t *testing.T, st store.Store) {
	withSid := newSession(t, st, "u1", "claim", t0)
	fpOnly := &store.Session{UserID: "u2", LoginTime: t0, LastActive: t0, UserLookup: "tok-a tok-b"}
	require.NoError(t, st.CreateSession(ctx(), fpOnly, []store.SessionKey{
		{Key: "fp:older", Kind: store.KeyAccess, ExpiresAt: t0.Add(time.Hour)},
		{Key: "fp:newer", Kind: store.KeyAccess, ExpiresAt: t0.Add(2 * time.Hour)},
		{Key: "fp:refresh-only", Kind: store.KeyRefresh, ExpiresAt: t0.Add(48 * time.Hour)},
	}, nil))
	refreshOnly := &store.Session{UserID: "u3", LoginTime: t0.Add(time.Hour), LastActive: t0.Add(time.Hour), UserLookup: "tok-a"}
	require.NoError(t, st.CreateSession(ctx(), refreshOnly, []store.SessionKey{
		{Key: "fp:r-only", Kind: store.KeyRefresh, ExpiresAt: t0.Add(48 * time.Hour)},
	}, nil))

	ids, err := st.SessionAppIDs(ctx(), []string{withSid.ID, fpOnly.ID, refreshOnly.ID, "sess_unknown", ""})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{withSid.ID: "claim", fpOnly.ID: "fp:newer"}, ids)
	ids, err = st.SessionAppIDs(ctx(), nil)
	require.NoError(t, err)
	assert.Empty(t, ids)

	uid, err := st.UserIDByLookup(ctx(), []string{"tok-a"})
	require.NoError(t, err)
	assert.Equal(t, "u3", uid, "the newest session holding the token")
	uid, err = st.UserIDByLookup(ctx(), []string{"tok-unknown", "tok-b"})
	require.NoError(t, err)
	assert.Equal(t, "u2", uid, "any of the tokens")
	for _, toks := range [][]string{{"tok-unknown"}, nil, {""}} {
		_, err = st.UserIDByLookup(ctx(), toks)
		assert.ErrorIs(t, err, store.ErrNotFound, "%q", toks)
	}
}
