package revocation_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

func fpKey(i int) string {
	// a canonical fp: key (43 base64url characters), distinct per i
	s := "fp:" + strconv.Itoa(i) + strings.Repeat("A", 43)
	return s[:3+43]
}

func localEntry(i int, expiry int64) revocation.LocalEntry {
	return revocation.NewLocalEntry([]string{"sid:s" + strconv.Itoa(i), fpKey(i)}, protocol.ReasonLogout, expiry, now.UnixMilli())
}

func tokenKeys(sid, fp string) *revocation.TokenKeys {
	k := &revocation.TokenKeys{}
	if sid != "" {
		k.Session = protocol.KeyHash(sid)
	}
	if fp != "" {
		k.Fingerprint = protocol.KeyHash(fp)
	}
	return k
}

func TestLocalCheck(t *testing.T) {
	n := now.Unix()
	var nilList *revocation.Local
	_, ok := nilList.Check(tokenKeys("sid:s1", ""), n)
	assert.False(t, ok, "a nil list revokes nothing")

	l := revocation.NewLocal(0)
	assert.Equal(t, revocation.DefaultLocalLimit, l.Limit())
	_, ok = l.Check(tokenKeys("sid:s1", fpKey(1)), n)
	assert.False(t, ok)

	require.Equal(t, revocation.LocalAdded, l.Add(localEntry(1, exp(time.Hour)), n))
	for _, k := range []*revocation.TokenKeys{tokenKeys("sid:s1", ""), tokenKeys("", fpKey(1)), tokenKeys("sid:other", fpKey(1))} {
		r, ok := l.Check(k, n)
		assert.True(t, ok)
		assert.Equal(t, protocol.ReasonLogout, r)
	}
	_, ok = l.Check(tokenKeys("sid:s2", fpKey(2)), n)
	assert.False(t, ok, "another token passes")
	_, ok = l.Check(tokenKeys("sid:s1", ""), exp(time.Hour)+revocation.Leeway+1)
	assert.False(t, ok, "past its token's expiry (and the leeway)")

	// The same token again: kept once, its expiry the later.
	assert.Equal(t, revocation.LocalPresent, l.Add(localEntry(1, exp(2*time.Hour)), n))
	assert.Equal(t, 1, l.Len())
	_, ok = l.Check(tokenKeys("sid:s1", ""), exp(time.Hour)+revocation.Leeway+1)
	assert.True(t, ok)

	assert.Equal(t, revocation.LocalInvalid, l.Add(revocation.NewLocalEntry(nil, "logout", 0, 0), n))
	assert.Equal(t, revocation.LocalInvalid, l.Add(revocation.NewLocalEntry([]string{strings.Repeat("x", protocol.MaxKeyLen+1)}, "logout", 0, 0), n))
}

func TestLocalCheckAllocatesNothing(t *testing.T) {
	n := now.Unix()
	l := revocation.NewLocal(0)
	k := tokenKeys("sid:s1", fpKey(1))
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.Check(k, n) }))
	l.Add(localEntry(1, 0), n)
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.Check(k, n) }))
}

// TestLocalBound: a full list keeps its oldest entries and refuses a new
// one, after dropping the expired ones.
func TestLocalBound(t *testing.T) {
	n := now.Unix()
	l := revocation.NewLocal(3)
	for i := 0; i < 3; i++ {
		require.Equal(t, revocation.LocalAdded, l.Add(localEntry(i, exp(time.Hour)), n))
	}
	assert.Equal(t, revocation.LocalFull, l.Add(localEntry(3, exp(time.Hour)), n))
	assert.Equal(t, 3, l.Len())
	for i := 0; i < 3; i++ {
		_, ok := l.Check(tokenKeys("sid:s"+strconv.Itoa(i), ""), n)
		assert.True(t, ok, "the oldest are kept: %d", i)
	}
	_, ok := l.Check(tokenKeys("sid:s3", ""), n)
	assert.False(t, ok)

	// An expired entry makes room.
	l = revocation.NewLocal(2)
	l.Add(localEntry(0, exp(time.Minute)), n)
	l.Add(localEntry(1, exp(time.Hour)), n)
	later := exp(time.Minute) + revocation.Leeway + 1
	require.Equal(t, revocation.LocalAdded, l.Add(localEntry(2, exp(time.Hour)), later))
	assert.Equal(t, 2, l.Len())
	_, ok = l.Check(tokenKeys("sid:s2", ""), later)
	assert.True(t, ok)

	assert.Equal(t, revocation.MaxLocalLimit, revocation.NewLocal(revocation.MaxLocalLimit+1).Limit())
}

func TestLocalDeliveryAndPrune(t *testing.T) {
	n := now.Unix()
	l := revocation.NewLocal(0)
	a, b, c := localEntry(1, exp(time.Hour)), localEntry(2, 0), localEntry(3, exp(time.Minute))
	for _, e := range []revocation.LocalEntry{a, b, c} {
		l.Add(e, n)
	}
	next, ok := l.NextUndelivered()
	require.True(t, ok)
	assert.Equal(t, a.ID, next.ID, "oldest first")
	assert.True(t, l.MarkDelivered(a.ID))
	assert.False(t, l.MarkDelivered(a.ID), "once")
	next, _ = l.NextUndelivered()
	assert.Equal(t, b.ID, next.ID)
	assert.Equal(t, 2, l.Undelivered())

	st := revocation.New()
	snapshot(t, st)
	assert.False(t, l.Prunable(st, n), "nothing delivered is carried, nothing expired")
	assert.Zero(t, l.Prune(st, n))

	// The feed carries a and b: a (delivered) goes, b (not delivered) stays.
	snapshot(t, st,
		protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:s1", Exp: exp(time.Hour), Reason: protocol.ReasonLogout},
		protocol.Change{Seq: 2, Op: protocol.OpRevoke, Key: fpKey(2), Exp: exp(time.Hour), Reason: protocol.ReasonLogout})
	assert.True(t, st.Carries(a.Keys, n))
	assert.False(t, st.Carries(c.Keys, n))
	assert.True(t, l.Prunable(st, n))
	assert.Equal(t, 1, l.Prune(st, n))
	assert.Equal(t, 2, l.Len())
	_, ok = l.Check(tokenKeys("sid:s1", ""), n)
	assert.False(t, ok, "dropped from the list (the state refuses it)")

	// c's token expires: it goes, delivered or not.
	later := exp(time.Minute) + revocation.Leeway + 1
	assert.Equal(t, 1, l.Prune(st, later))
	assert.Equal(t, 1, l.Len())
	_, ok = l.Check(tokenKeys("sid:s2", ""), later)
	assert.True(t, ok, "b (no expiry, not delivered) stays")
}

func TestLocalMarshal(t *testing.T) {
	n := now.Unix()
	l := revocation.NewLocal(0)
	empty, err := revocation.UnmarshalLocal(l.Marshal(), 0)
	require.NoError(t, err)
	assert.Zero(t, empty.Len())

	for i := 0; i < 5; i++ {
		l.Add(localEntry(i, exp(time.Duration(i)*time.Hour)), n)
	}
	l.MarkDelivered(l.Entries()[1].ID)
	b := l.Marshal()
	got, err := revocation.UnmarshalLocal(b, 0)
	require.NoError(t, err)
	require.Equal(t, l.Len(), got.Len())
	for i, e := range got.Entries() {
		want := l.Entries()[i]
		assert.Equal(t, want.ID, e.ID)
		assert.Equal(t, want.Keys, e.Keys)
		assert.Equal(t, want.Reason, e.Reason)
		assert.Equal(t, want.Exp, e.Exp)
		assert.Equal(t, want.At, e.At)
		assert.Equal(t, want.Delivered, e.Delivered)
		_, ok := got.Check(tokenKeys(e.Keys[0], ""), n)
		assert.True(t, ok, "entry %d", i)
	}

	// Under a smaller limit, the oldest are kept.
	small, err := revocation.UnmarshalLocal(b, 2)
	require.NoError(t, err)
	require.Equal(t, 2, small.Len())
	assert.Equal(t, l.Entries()[0].ID, small.Entries()[0].ID)

	for _, bad := range [][]byte{[]byte("x"), []byte("MSLR\x02\x00\x00\x00\x00\x00"), b[:len(b)-1], append(append([]byte{}, b[:10]...), b[11:]...)} {
		_, err := revocation.UnmarshalLocal(bad, 0)
		assert.ErrorIs(t, err, revocation.ErrCorrupt, "%q", bad)
	}
	flipped := append([]byte{}, b...)
	flipped[8] ^= 1
	_, err = revocation.UnmarshalLocal(flipped, 0)
	assert.ErrorIs(t, err, revocation.ErrCorrupt)
}

// TestLocalReplaceKeepsWhatTheStateLacks: a worker adopting a newer list
// that lacks one of its entries (another worker dropped it against its own
// state) keeps it until its own state carries it: it never accepts a
// token it refused.
func TestLocalReplaceKeepsWhatTheStateLacks(t *testing.T) {
	n := now.Unix()
	mine := revocation.NewLocal(0)
	a, b := localEntry(1, exp(time.Hour)), localEntry(2, exp(time.Hour))
	mine.Add(a, n)
	mine.Add(b, n)

	next := revocation.NewLocal(0)
	next.Add(b, n)
	c := localEntry(3, exp(time.Hour))
	next.Add(c, n)

	st := revocation.New()
	snapshot(t, st) // lacks a
	assert.Equal(t, 1, mine.Replace(next, st, n))
	assert.Equal(t, 3, mine.Len())
	for _, sid := range []string{"sid:s1", "sid:s2", "sid:s3"} {
		_, ok := mine.Check(tokenKeys(sid, ""), n)
		assert.True(t, ok, sid)
	}
	assert.Equal(t, 2, mine.Undelivered(), "a kept entry is not reported again")

	// Once this worker's state carries a, the next adoption drops it.
	snapshot(t, st, protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: fpKey(1), Exp: exp(time.Hour), Reason: protocol.ReasonLogout})
	assert.Zero(t, mine.Replace(next, st, n))
	assert.Equal(t, 2, mine.Len())
	// And an expired one is not kept either.
	mine.Add(localEntry(4, exp(time.Minute)), n)
	assert.Zero(t, mine.Replace(next, st, exp(time.Minute)+revocation.Leeway+1))
	assert.Equal(t, 2, mine.Len())
}
