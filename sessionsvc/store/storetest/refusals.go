package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/store"
)

// testLoginRefusals: refused logins are counted by reason over a range,
// a failed login with an event scope is one credentials refusal, the
// failed-login records' own pruning (a day per address) takes none of them
// away, and only PruneLoginRefusals deletes them. They are counted per
// minute: a range is read in whole minutes.
func testLoginRefusals(t *testing.T, st store.Store) {
	base := t0.Truncate(time.Minute) // refusals are counted per minute
	count := func(from, to time.Time) map[string]int {
		t.Helper()
		by, err := st.CountLoginRefusals(ctx(), from, to)
		require.NoError(t, err)
		return by
	}
	none := map[string]int{store.RefusalCredentials: 0, store.RefusalLockout: 0, store.RefusalBlocked: 0, store.RefusalPolicy: 0}
	assert.Equal(t, none, count(base.Add(-time.Hour), base.Add(time.Hour)), "every reason, 0 when none")
	assert.Error(t, st.RecordLoginRefusal(ctx(), "nope", base))

	for i, r := range []string{store.RefusalLockout, store.RefusalLockout, store.RefusalBlocked, store.RefusalPolicy, store.RefusalLockout} {
		require.NoError(t, st.RecordLoginRefusal(ctx(), r, base.Add(time.Duration(i)*time.Minute)))
	}
	// Failed logins from one address, two days apart: the second prunes
	// the address's failed-login record of the first, not its refusal.
	ip := store.LoginFailure{LoginAttempt: store.LoginAttempt{Scope: "ip:192.0.2.1", Kind: store.CounterIP, Subject: "192.0.2.1",
		Threshold: 1000, Window: time.Hour}, LockFor: time.Minute}
	for _, at := range []time.Time{base.Add(-48 * time.Hour), base.Add(-47 * time.Hour), base.Add(2 * time.Minute)} {
		f := ip
		f.At = at
		_, err := st.RecordLoginFailures(ctx(), []store.LoginFailure{f}, "ip:192.0.2.1", nil)
		require.NoError(t, err)
	}
	n, err := st.CountFailedLogins(ctx(), "ip:192.0.2.1", base.Add(-72*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the failed-login record keeps a day per address (unchanged)")
	// Without an event scope (a counter alone) nothing is a refusal.
	f := ip
	f.At = base.Add(3 * time.Minute)
	_, err = st.RecordLoginFailure(ctx(), f, nil)
	require.NoError(t, err)

	assert.Equal(t, map[string]int{store.RefusalCredentials: 3, store.RefusalLockout: 3, store.RefusalBlocked: 1, store.RefusalPolicy: 1},
		count(base.Add(-7*24*time.Hour), base.Add(time.Hour)))
	assert.Equal(t, map[string]int{store.RefusalCredentials: 1, store.RefusalLockout: 2, store.RefusalBlocked: 1, store.RefusalPolicy: 1},
		count(base.Add(time.Minute), base.Add(5*time.Minute)), "from inclusive, to exclusive")

	pruned, err := st.PruneLoginRefusals(ctx(), base)
	require.NoError(t, err)
	assert.Equal(t, 2, pruned, "the two failures of two days ago")
	assert.Equal(t, map[string]int{store.RefusalCredentials: 1, store.RefusalLockout: 3, store.RefusalBlocked: 1, store.RefusalPolicy: 1},
		count(base.Add(-7*24*time.Hour), base.Add(time.Hour)))
	// The sessions' purge leaves them alone.
	_, err = st.Purge(ctx(), base.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 6, sum(count(base.Add(-7*24*time.Hour), base.Add(time.Hour))))

	// A flood adds to one row a minute and reason, not a row an attempt.
	flood := base.Add(10 * time.Hour)
	for i := range 200 {
		require.NoError(t, st.RecordLoginRefusal(ctx(), store.RefusalLockout, flood.Add(time.Duration(i)*250*time.Millisecond)))
	}
	assert.Equal(t, 200, count(flood, flood.Add(time.Hour))[store.RefusalLockout])
	pruned, err = st.PruneLoginRefusals(ctx(), flood.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 6+1, pruned, "the six minute-and-reason rows before, and the flood's one (50 s of lockouts)")
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// RefusalsMigration: a database from before the refused-logins record
// (migration 0110) keeps its wrong credentials: the failed logins on
// record per address become credentials refusals, the dashboard's own
// sign-in failures do not.
func RefusalsMigration(t *testing.T, b Backend) {
	u := b.URL(t)
	st := openRaw(t, u)
	require.NoError(t, st.Close())
	// Back to version 0100 (0090 on PostgreSQL), with failed logins on record.
	db := rawDB(t, b.Name, u)
	defer db.Close()
	for _, q := range []string{
		`DROP TABLE login_refusals`,
		`DELETE FROM schema_migrations WHERE version >= 110`,
		`INSERT INTO failed_logins (scope, at) VALUES ('ip:192.0.2.1', 1000), ('ip:192.0.2.1', 2000), ('ip:2001:db8::/64', 3000),
			('dashboard:192.0.2.1', 4000)`,
	} {
		_, err := db.ExecContext(ctx(), q)
		require.NoError(t, err, q)
	}
	st = openRaw(t, u)
	defer st.Close()
	by, err := st.CountLoginRefusals(ctx(), time.UnixMilli(0), time.UnixMilli(10_000))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{store.RefusalCredentials: 3, store.RefusalLockout: 0, store.RefusalBlocked: 0, store.RefusalPolicy: 0}, by)
}
