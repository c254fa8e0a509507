package revocation_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/cputime"
	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

var now = time.Unix(1_800_000_000, 0)

func page(t testing.TB, p protocol.SyncPage) []byte {
	t.Helper()
	b, err := json.Marshal(p)
	require.NoError(t, err)
	return b
}

func snapshot(t *testing.T, s *revocation.State, changes ...protocol.Change) {
	t.Helper()
	var cursor int64
	if len(changes) > 0 {
		cursor = changes[len(changes)-1].Seq
	}
	_, err := s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: cursor, Reset: true, Changes: changes}), now)
	require.NoError(t, err)
}

func exp(d time.Duration) int64 { return now.Add(d).Unix() }

func TestApplySnapshotAndLookups(t *testing.T) {
	s := revocation.New()
	assert.Equal(t, "", s.Epoch())
	snapshot(t, s,
		protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a", Exp: exp(time.Hour), Reason: protocol.ReasonManual},
		protocol.Change{Seq: 2, Op: protocol.OpRevoke, Key: "fp:xyz", Exp: 0, Reason: "custom-reason"},
		protocol.Change{Seq: 3, Op: protocol.OpBlock, User: "u1", Reason: protocol.ReasonBlocked},
		protocol.Change{Seq: 4, Op: protocol.OpNotBefore, User: "user:u2", At: 500, Exp: exp(time.Hour)},
		protocol.Change{Seq: 5, Op: protocol.OpBlock, Key: "user:u3"},
	)
	assert.Equal(t, "e1", s.Epoch())
	assert.EqualValues(t, 5, s.Cursor())
	assert.EqualValues(t, 1, s.Version())
	n := now.Unix()

	r, ok := s.Revoked("sid:a", n)
	assert.True(t, ok)
	assert.Equal(t, protocol.ReasonManual, r)
	r, ok = s.Revoked("fp:xyz", n)
	assert.True(t, ok)
	assert.Equal(t, "custom-reason", r)
	_, ok = s.Revoked("sid:b", n)
	assert.False(t, ok)

	r, ok = s.Blocked("u1", n)
	assert.True(t, ok)
	assert.Equal(t, protocol.ReasonBlocked, r)
	r, ok = s.Blocked("u3", n) // given as key "user:u3", no reason
	assert.True(t, ok)
	assert.Equal(t, protocol.ReasonBlocked, r)
	at, ok := s.NotBefore("u2", n)
	assert.True(t, ok)
	assert.EqualValues(t, 500, at)

	// expiry: live until exp + leeway, then ignored and pruned
	later := exp(time.Hour) + revocation.Leeway
	_, ok = s.Revoked("sid:a", later)
	assert.True(t, ok)
	_, ok = s.Revoked("sid:a", later+1)
	assert.False(t, ok)
	_, ok = s.NotBefore("u2", later+1)
	assert.False(t, ok)
	_, ok = s.Revoked("fp:xyz", later+1e6) // exp 0 = never
	assert.True(t, ok)

	assert.Equal(t, 2, s.Prune(time.Unix(later+1, 0)))
	assert.Equal(t, revocation.Counts{Revoked: 1, Blocked: 2, NotBefore: 0}, s.Len())
}

func TestIncrementalPages(t *testing.T) {
	s := revocation.New()
	snapshot(t, s, protocol.Change{Seq: 10, Op: protocol.OpRevoke, Key: "sid:a"})
	res, err := s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 13, Changes: []protocol.Change{
		{Seq: 11, Op: protocol.OpRevoke, Key: "sid:b", Reason: protocol.ReasonLogout},
		{Seq: 12, Op: protocol.OpUnrevoke, Key: "sid:a"},
		{Seq: 13, Op: protocol.OpBlock, User: "u"},
	}}), now)
	require.NoError(t, err)
	assert.Equal(t, 3, res.Changes)
	assert.EqualValues(t, 13, s.Cursor())
	assert.EqualValues(t, 2, s.Version())
	_, ok := s.Revoked("sid:a", now.Unix())
	assert.False(t, ok)
	r, ok := s.Revoked("sid:b", now.Unix())
	assert.True(t, ok)
	assert.Equal(t, "logout", r)

	// unblock; not-before takes the max
	_, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 16, Changes: []protocol.Change{
		{Seq: 14, Op: protocol.OpUnblock, User: "u"},
		{Seq: 15, Op: protocol.OpNotBefore, User: "v", At: 900},
		{Seq: 16, Op: protocol.OpNotBefore, User: "v", At: 800},
	}}), now)
	require.NoError(t, err)
	_, ok = s.Blocked("u", now.Unix())
	assert.False(t, ok)
	at, _ := s.NotBefore("v", now.Unix())
	assert.EqualValues(t, 900, at)

	// empty page: same cursor, no version bump
	v := s.Version()
	_, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 16}), now)
	require.NoError(t, err)
	assert.Equal(t, v, s.Version())

	// already-expired revocations are not stored
	res, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 17, Changes: []protocol.Change{
		{Seq: 17, Op: protocol.OpRevoke, Key: "sid:old", Exp: now.Unix() - 3600},
	}}), now)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Skipped)
	assert.Equal(t, 1, s.Len().Revoked)
}

func TestRejectedPagesChangeNothing(t *testing.T) {
	base := func() *revocation.State {
		s := revocation.New()
		snapshot(t, s, protocol.Change{Seq: 5, Op: protocol.OpRevoke, Key: "sid:a"})
		return s
	}
	good := protocol.Change{Seq: 6, Op: protocol.OpRevoke, Key: "sid:new"}
	tests := []struct {
		name string
		body string
		want string
	}{
		{"not json", `{"epoch":`, "not valid JSON"},
		{"array", `[]`, "not a JSON object"},
		{"html", `<html>502</html>`, "not valid JSON"},
		{"empty", ``, "not valid JSON"},
		{"missing epoch", `{"cursor":6,"changes":[]}`, `missing "epoch"`},
		{"missing cursor", `{"epoch":"e1","changes":[]}`, `missing "cursor"`},
		{"cursor string", `{"epoch":"e1","cursor":"6"}`, `"cursor" must be an integer`},
		{"cursor negative", `{"epoch":"e1","cursor":-1}`, `non-negative`},
		{"cursor float", `{"epoch":"e1","cursor":6.5}`, `non-negative integer`},
		{"more not bool", `{"epoch":"e1","cursor":6,"more":1}`, `"more" must be true or false`},
		{"changes object", `{"epoch":"e1","cursor":6,"changes":{}}`, `"changes" must be an array`},
		{"duplicate field", `{"epoch":"e1","epoch":"e1","cursor":6}`, `duplicate field "epoch"`},
		{"change not object", `{"epoch":"e1","cursor":7,"changes":[{"seq":6,"op":"revoke","key":"sid:x"},1]}`, "changes[1]: must be an object"},
		{"unknown op after good one", `{"epoch":"e1","cursor":7,"changes":[{"seq":6,"op":"revoke","key":"sid:x"},{"seq":7,"op":"nuke"}]}`, `changes[1]: unknown op "nuke"`},
		{"missing op", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"key":"sid:x"}]}`, `missing "op"`},
		{"bad prefix", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"revoke","key":"user:x"}]}`, `starting with "sid:" or "fp:"`},
		{"empty key", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"revoke","key":"sid:"}]}`, `empty key`},
		{"block without user", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"block"}]}`, `needs "user"`},
		{"not_before without at", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"not_before","user":"u"}]}`, `needs "at"`},
		{"negative exp", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"revoke","key":"sid:x","exp":-1}]}`, `non-negative`},
		{"seq not ascending", `{"epoch":"e1","cursor":8,"changes":[{"seq":8,"op":"revoke","key":"sid:x"},{"seq":7,"op":"revoke","key":"sid:y"}]}`, "seq 7 not above 8"},
		{"seq at cursor", `{"epoch":"e1","cursor":6,"changes":[{"seq":5,"op":"revoke","key":"sid:x"}]}`, "seq 5 not above 5"},
		{"missing seq", `{"epoch":"e1","cursor":6,"changes":[{"op":"revoke","key":"sid:x"}]}`, `"seq" must be a positive integer`},
		{"cursor below last seq", `{"epoch":"e1","cursor":6,"changes":[{"seq":7,"op":"revoke","key":"sid:x"}]}`, "cursor 6 below the last seq 7"},
		{"cursor goes back", `{"epoch":"e1","cursor":4,"changes":[]}`, "cursor 4 goes back from 5"},
		{"other epoch", `{"epoch":"e2","cursor":6,"changes":[]}`, "request a snapshot"},
		{"key too long", fmt.Sprintf(`{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"revoke","key":"sid:%s"}]}`, bytes.Repeat([]byte("k"), 2000)), "longer than"},
		{"reason not string", `{"epoch":"e1","cursor":6,"changes":[{"seq":6,"op":"revoke","key":"sid:x","reason":1}]}`, `"reason" must be a string`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			before := s.Dump()
			_, err := s.ApplyPage([]byte(tc.body), now)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, before, s.Dump(), "state changed by a rejected page")
			// and a good page still applies afterwards
			_, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 6, Changes: []protocol.Change{good}}), now)
			require.NoError(t, err)
		})
	}
	// no snapshot yet
	_, err := revocation.New().ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 3}), now)
	assert.ErrorIs(t, err, revocation.ErrNeedSnapshot)
}

func TestMultiPageSnapshotSwapsAtEnd(t *testing.T) {
	s := revocation.New()
	snapshot(t, s, protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:old"})
	// epoch changes: a new snapshot in two pages
	res, err := s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e2", Cursor: 2, More: true, Reset: true, Changes: []protocol.Change{
		{Seq: 2, Op: protocol.OpRevoke, Key: "sid:n1"},
	}}), now)
	require.NoError(t, err)
	assert.False(t, res.Swapped)
	assert.True(t, s.Building())
	ep, cur := s.Next()
	assert.Equal(t, "e2", ep)
	assert.EqualValues(t, 2, cur)
	// old state still answers until the snapshot completes
	_, ok := s.Revoked("sid:old", now.Unix())
	assert.True(t, ok)
	_, ok = s.Revoked("sid:n1", now.Unix())
	assert.False(t, ok)
	assert.Equal(t, "e1", s.Epoch())

	// a bad continuation page is rejected and the snapshot continues
	_, err = s.ApplyPage([]byte(`{"epoch":"e2","cursor":3,"changes":[{"seq":3,"op":"bad"}]}`), now)
	require.Error(t, err)
	assert.True(t, s.Building())

	res, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e2", Cursor: 4, Changes: []protocol.Change{
		{Seq: 3, Op: protocol.OpRevoke, Key: "fp:n2"},
		{Seq: 4, Op: protocol.OpBlock, User: "u"},
	}}), now)
	require.NoError(t, err)
	assert.True(t, res.Swapped)
	assert.False(t, s.Building())
	assert.Equal(t, "e2", s.Epoch())
	assert.EqualValues(t, 4, s.Cursor())
	_, ok = s.Revoked("sid:old", now.Unix())
	assert.True(t, ok, "old entries kept after the swap (keep.go)")
	_, ok = s.Revoked("fp:n2", now.Unix())
	assert.True(t, ok)
	_, ok = s.Blocked("u", now.Unix())
	assert.True(t, ok)

	// a new Reset restarts a snapshot being built; AbortSnapshot drops it
	_, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e3", Cursor: 9, More: true, Reset: true}), now)
	require.NoError(t, err)
	s.AbortSnapshot()
	ep, cur = s.Next()
	assert.Equal(t, "e2", ep)
	assert.EqualValues(t, 4, cur)

	// empty snapshot of a fresh store: what the state had is kept (keep.go)
	before := s.Len()
	_, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e4", Cursor: 0, Reset: true}), now)
	require.NoError(t, err)
	assert.Equal(t, "e4", s.Epoch())
	assert.Equal(t, before, s.Len())
}

func TestMarshalRoundTrip(t *testing.T) {
	s := revocation.New()
	snapshot(t, s,
		protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a", Exp: exp(time.Hour), Reason: "manual"},
		protocol.Change{Seq: 2, Op: protocol.OpRevoke, Key: "fp:b", Reason: "weird"},
		protocol.Change{Seq: 3, Op: protocol.OpBlock, User: "u1", Reason: "blocked"},
		protocol.Change{Seq: 4, Op: protocol.OpNotBefore, User: "u2", At: 77},
	)
	meta, table := marshal(s)
	h, err := revocation.PeekHeader(meta)
	require.NoError(t, err)
	assert.Equal(t, revocation.Header{Version: 1, Epoch: "e1", Cursor: 4}, h)

	s2, err := revocation.Unmarshal(meta, table)
	require.NoError(t, err)
	assert.Equal(t, s.Dump(), s2.Dump())
	n := now.Unix()
	r, ok := s2.Revoked("fp:b", n)
	assert.True(t, ok)
	assert.Equal(t, "weird", r)
	r, ok = s2.Blocked("u1", n)
	assert.True(t, ok)
	assert.Equal(t, "blocked", r)
	at, ok := s2.NotBefore("u2", n)
	assert.True(t, ok)
	assert.EqualValues(t, 77, at)

	// the adopted state keeps syncing
	_, err = s2.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 5, Changes: []protocol.Change{{Seq: 5, Op: protocol.OpRevoke, Key: "sid:c", Reason: "idle"}}}), now)
	require.NoError(t, err)
	r, _ = s2.Revoked("sid:c", n)
	assert.Equal(t, "idle", r)

	// empty state round-trips too
	e, err := revocation.Unmarshal(marshal(revocation.New()))
	require.NoError(t, err)
	assert.Equal(t, "", e.Epoch())
}

func TestUnmarshalGarbage(t *testing.T) {
	s := revocation.New()
	snapshot(t, s, protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a"})
	good, table := marshal(s)
	cases := map[string][]byte{
		"nil":       nil,
		"short":     []byte("MSR"),
		"magic":     append([]byte("XXXX"), good[4:]...),
		"format":    append(append([]byte("MSRV"), 9), good[5:]...),
		"truncated": good[:len(good)-1],
		"flipped":   flip(good, 10),
		"extra":     append(append([]byte{}, good...), 0),
	}
	for name, b := range cases {
		_, err := revocation.Unmarshal(b, bytes.Clone(table))
		assert.ErrorIs(t, err, revocation.ErrCorrupt, name)
	}
	// every truncation fails cleanly
	for i := 0; i < len(good); i++ {
		_, err := revocation.Unmarshal(good[:i], bytes.Clone(table))
		assert.Error(t, err)
	}
	// A table that is not the meta's: another publication's, cut, altered.
	other := revocation.New()
	snapshot(t, other, protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a"})
	_, otherTable := marshal(other)
	tables := map[string][]byte{
		"another publication": otherTable,
		"truncated":           table[:len(table)-1],
		"no trailer":          table[:len(table)-16],
		"empty":               nil,
		"slot cleared":        clearFirstUsed(table),
		"bad reason":          badReason(table),
	}
	for name, tb := range tables {
		_, err := revocation.Unmarshal(good, tb)
		assert.ErrorIs(t, err, revocation.ErrCorrupt, name)
	}
	_, err := revocation.Unmarshal(good, bytes.Clone(table))
	require.NoError(t, err)
	// A table buffer that is not 8-byte aligned is copied, not used in place.
	shifted := make([]byte, len(table)+1)
	copy(shifted[1:], table)
	s3, err := revocation.Unmarshal(good, shifted[1:])
	require.NoError(t, err)
	assert.Equal(t, s.Dump(), s3.Dump())
	_, ok := s3.Revoked("sid:a", now.Unix())
	assert.True(t, ok)
	// Marshal twice: two publications, each table pairs only with its meta.
	m1, t1 := marshal(s)
	m2, t2 := marshal(s)
	_, err = revocation.Unmarshal(m1, t2)
	assert.ErrorIs(t, err, revocation.ErrCorrupt)
	_, err = revocation.Unmarshal(m2, t2)
	assert.NoError(t, err)
	_, err = revocation.Unmarshal(m1, t1)
	assert.NoError(t, err)
}

// clearFirstUsed empties the first occupied slot of a serialised table.
func clearFirstUsed(table []byte) []byte {
	c := bytes.Clone(table)
	for i := 0; i+16 < len(c); i += 16 {
		if !bytes.Equal(c[i:i+8], make([]byte, 8)) {
			copy(c[i:i+16], make([]byte, 16))
			break
		}
	}
	return c
}

// badReason gives the first occupied slot a reason index past the list.
func badReason(table []byte) []byte {
	c := bytes.Clone(table)
	for i := 0; i+16 < len(c); i += 16 {
		if !bytes.Equal(c[i:i+8], make([]byte, 8)) {
			c[i+8] = 250 // the entry's low byte is its reason index
			break
		}
	}
	return c
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0xff
	return c
}

// bigKey is the i-th key of a big snapshot: session ids and fingerprints
// (not all valid digests) in turn.
func bigKey(i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("sid:%08x-0000-4000-8000-%012x", i, i)
	}
	return fmt.Sprintf("fp:%043d", i)
}

// bigSnapshot returns the JSON pages of a snapshot of n revocations.
func bigSnapshot(tb testing.TB, n, pageSize int) [][]byte {
	return bigSnapshotIn(tb, n, pageSize, page)
}

// bigSnapshotIn returns the pages of a snapshot of n revocations, each
// encoded by encode; the first says how big the snapshot is, as
// sessionsvc's does.
func bigSnapshotIn(tb testing.TB, n, pageSize int, encode func(testing.TB, protocol.SyncPage) []byte) [][]byte {
	var pages [][]byte
	for start := 0; start < n; start += pageSize {
		end := min(start+pageSize, n)
		p := protocol.SyncPage{Epoch: "big", Cursor: int64(end), More: end < n, Reset: start == 0}
		if p.Reset {
			p.Total = int64(n)
		}
		for i := start; i < end; i++ {
			p.Changes = append(p.Changes, protocol.Change{Seq: int64(i + 1), Op: protocol.OpRevoke, Key: bigKey(i), Exp: now.Unix() + 3600, Reason: protocol.ReasonManual})
		}
		pages = append(pages, encode(tb, p))
	}
	return pages
}

// BenchmarkApplySnapshot100k applies a 100,000-entry snapshot in pages of
// 5,000 or in one, as JSON and in the binary form the plugin asks for.
func BenchmarkApplySnapshot100k(b *testing.B) {
	for _, format := range []struct {
		name   string
		encode func(testing.TB, protocol.SyncPage) []byte
	}{{"json", page}, {"binary", binPage}} {
		for _, ps := range []int{5000, 100000} {
			pages := bigSnapshotIn(b, 100000, ps, format.encode)
			b.Run(fmt.Sprintf("%s/pages=%d", format.name, ps), func(b *testing.B) {
				b.ReportAllocs()
				cpu := cputime.Report()
				for b.Loop() {
					s := revocation.New()
					for _, p := range pages {
						if _, err := s.ApplyPage(p, now); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(cpu(b.N), "cpu-ns/op")
			})
		}
	}
}

func loaded(tb testing.TB, n int) *revocation.State {
	s := revocation.New()
	for _, p := range bigSnapshot(tb, n, 5000) {
		if _, err := s.ApplyPage(p, now); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

func BenchmarkMarshalUnmarshal100k(b *testing.B) {
	s := loaded(b, 100000)
	meta, table := marshal(s)
	b.Logf("serialised 100k: meta %d bytes, table %d bytes", len(meta), len(table))
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cputime.Report()
		for b.Loop() {
			_, _ = s.Marshal()
		}
		b.ReportMetric(cpu(b.N), "cpu-ns/op")
	})
	b.Run("unmarshal", func(b *testing.B) {
		// Each round gets a table of its own (Unmarshal takes it): the
		// copy is part of the figure, as reading shared data is in the VM.
		b.ReportAllocs()
		cpu := cputime.Report()
		for b.Loop() {
			if _, err := revocation.Unmarshal(meta, bytes.Clone(table)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(cpu(b.N), "cpu-ns/op")
	})
	b.Run("peek", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cputime.Report()
		for b.Loop() {
			_, _ = revocation.PeekHeader(meta)
		}
		b.ReportMetric(cpu(b.N), "cpu-ns/op")
	})
}

// TestMemory bounds the heap a state holds per revocation. Measured
// (2026-12, natively and under GOOS=wasip1 on wazero): 32-34 B/entry, 3.06 MiB
// for 100k. The bound, 44 B/entry plus 128 KiB of collector noise (4.3 MiB
// at 100k), leaves room for the table's growth steps and fails a regression
// of a third or more.
func TestMemory(t *testing.T) {
	const perEntry, slack = 44, 128 << 10
	if testing.Short() {
		t.Skip("builds 100k entries")
	}
	for _, n := range []int{1000, 10000, 100000} {
		pages := bigSnapshot(t, n, 5000)
		runtime.GC()
		runtime.GC() // twice: sync.Pool victim caches
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := revocation.New()
		for _, p := range pages {
			_, err := s.ApplyPage(p, now)
			require.NoError(t, err)
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(pages)
		held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("revocations=%d heap held=%.2f MiB (%.0f B/entry); process heap in use %.2f MiB, obtained from the OS %.2f MiB",
			n, float64(held)/(1<<20), float64(held)/float64(n), float64(after.HeapInuse)/(1<<20), float64(after.Sys)/(1<<20))
		assert.LessOrEqual(t, held, int64(n*perEntry+slack), "heap held by %d revocations", n)
		runtime.KeepAlive(s)
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		s := loaded(b, n)
		key := "sid:notrevoked-0000-4000-8000-000000000000"
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := cputime.Report()
			for b.Loop() {
				if _, ok := s.Revoked(key, now.Unix()); ok {
					b.Fatal("revoked")
				}
			}
			b.ReportMetric(cpu(b.N), "cpu-ns/op")
		})
	}
}

func BenchmarkPrune100k(b *testing.B) {
	s := loaded(b, 100000)
	b.ReportAllocs()
	cpu := cputime.Report()
	for b.Loop() {
		s.Prune(now) // nothing expired: measures the scan
	}
	b.ReportMetric(cpu(b.N), "cpu-ns/op")
}

func TestFingerprintKeys(t *testing.T) {
	sum := sha256.Sum256([]byte("a.b.c"))
	key := "fp:" + base64.RawURLEncoding.EncodeToString(sum[:])
	s := revocation.New()
	snapshot(t, s,
		protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: key, Reason: protocol.ReasonReuse, Exp: exp(time.Hour)},
		protocol.Change{Seq: 2, Op: protocol.OpRevoke, Key: "fp:short", Reason: protocol.ReasonLogout},
	)
	n := now.Unix()
	r, ok := s.Revoked(key, n)
	assert.True(t, ok)
	assert.Equal(t, protocol.ReasonReuse, r)
	v, r := s.CheckToken(&revocation.TokenKeys{Fingerprint: protocol.FingerprintHash(&sum)}, n)
	assert.Equal(t, revocation.TokenRevoked, v, "a token's digest finds its fp: key")
	assert.Equal(t, protocol.ReasonReuse, r)
	_, ok = s.Revoked("fp:short", n)
	assert.True(t, ok, "non-digest fp keys are kept as strings")
	assert.Equal(t, 2, s.Len().Revoked)

	// re-revoking with a shorter expiry keeps the longer one
	_, err := s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 3, Changes: []protocol.Change{
		{Seq: 3, Op: protocol.OpRevoke, Key: key, Reason: protocol.ReasonManual, Exp: exp(time.Minute)},
	}}), now)
	require.NoError(t, err)
	_, ok = s.Revoked(key, exp(time.Hour))
	assert.True(t, ok)

	s2, err := revocation.Unmarshal(marshal(s))
	require.NoError(t, err)
	v, r = s2.CheckToken(&revocation.TokenKeys{Fingerprint: protocol.FingerprintHash(&sum)}, n)
	assert.Equal(t, revocation.TokenRevoked, v)
	assert.Equal(t, protocol.ReasonManual, r)

	_, err = s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 5, Changes: []protocol.Change{
		{Seq: 4, Op: protocol.OpUnrevoke, Key: key},
		{Seq: 5, Op: protocol.OpUnrevoke, Key: "fp:short"},
	}}), now)
	require.NoError(t, err)
	_, ok = s.Revoked(key, n)
	assert.False(t, ok)
	assert.Equal(t, 0, s.Len().Revoked)
}

// The fast path for encoding/json's compact output and the general parser
// (used here for the indented form of the same page) agree.
func TestFastPathMatchesGeneralParser(t *testing.T) {
	changes := []protocol.Change{
		{Seq: 1, Op: protocol.OpRevoke, Key: "sid:a", Exp: 5000000000, Reason: "manual"},
		{Seq: 2, Op: protocol.OpRevoke, Key: "fp:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
		{Seq: 3, Op: protocol.OpBlock, User: "u\"1", Reason: "esc\\aped"},
		{Seq: 4, Op: protocol.OpNotBefore, User: "u2", At: 77, Exp: 5000000000},
		{Seq: 5, Op: protocol.OpRevoke, Key: "sid:<html>&", Reason: "é"},
		{Seq: 6, Op: protocol.OpUnrevoke, Key: "sid:a"},
		{Seq: 7, Op: protocol.OpUnblock, User: "nobody"},
	}
	compact := page(t, protocol.SyncPage{Epoch: "e", Cursor: 7, Reset: true, Changes: changes})
	var indented bytes.Buffer
	require.NoError(t, json.Indent(&indented, compact, "", "  "))
	a, b := revocation.New(), revocation.New()
	_, err := a.ApplyPage(compact, now)
	require.NoError(t, err)
	_, err = b.ApplyPage(indented.Bytes(), now)
	require.NoError(t, err)
	assert.Equal(t, a.Dump(), b.Dump())
	assert.Equal(t, revocation.Counts{Revoked: 2, Blocked: 1, NotBefore: 1}, a.Len())

	// invalid values are rejected the same way on both paths
	for _, bad := range []string{
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":0,"op":"revoke","key":"sid:a"}]}`,
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":1,"op":"nuke"}]}`,
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":01,"op":"revoke","key":"sid:a"}]}`,
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":1,"op":"revoke","key":"sid:a"}`,
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":1,"op":"revoke","key":"sid:a` + "\x01" + `"}]}`,
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":1,"op":"revoke","key":"sid:a"}}]}`,
		`{"epoch":"e","cursor":1,"reset":true,"changes":[{"seq":1234567890123456789012,"op":"revoke","key":"sid:a"}]}`,
	} {
		_, err := revocation.New().ApplyPage([]byte(bad), now)
		assert.Error(t, err, bad)
	}
}

func TestCheckToken(t *testing.T) {
	s := revocation.New()
	snapshot(t, s,
		protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:gone", Reason: protocol.ReasonManual},
		protocol.Change{Seq: 2, Op: protocol.OpRevoke, Key: "sid:idle", Exp: exp(time.Hour), Reason: protocol.ReasonIdle},
		protocol.Change{Seq: 3, Op: protocol.OpRevoke, Key: "sid:old", Exp: exp(-time.Hour)},
		protocol.Change{Seq: 4, Op: protocol.OpBlock, User: "blocked"},
		protocol.Change{Seq: 5, Op: protocol.OpBlock, User: "blocked-why", Reason: "fraud"},
		protocol.Change{Seq: 6, Op: protocol.OpNotBefore, User: "cut", At: 1000, Exp: exp(time.Hour)},
	)
	sum := sha256.Sum256([]byte("a token"))
	_, err := s.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 7, Changes: []protocol.Change{
		{Seq: 7, Op: protocol.OpRevoke, Key: "fp:" + base64.RawURLEncoding.EncodeToString(sum[:]), Reason: protocol.ReasonReuse}}}), now)
	require.NoError(t, err)
	n := now.Unix()
	keys := func(user, sid string, fp *[32]byte, iat int64) *revocation.TokenKeys {
		k := &revocation.TokenKeys{IssuedAt: iat, HasIssuedAt: iat != 0}
		if user != "" {
			k.User = revocation.UserHash(user)
		}
		if sid != "" {
			k.Session = protocol.KeyHash("sid:" + sid)
		}
		if fp != nil {
			k.Fingerprint = protocol.FingerprintHash(fp)
		}
		return k
	}
	for _, tc := range []struct {
		name   string
		k      *revocation.TokenKeys
		want   revocation.Verdict
		reason string
	}{
		{"clear", keys("u", "live", nil, 5000), revocation.Clear, ""},
		{"no keys", &revocation.TokenKeys{}, revocation.Clear, ""},
		{"revoked session", keys("u", "gone", nil, 0), revocation.SessionRevoked, protocol.ReasonManual},
		{"revoked until exp", keys("u", "idle", nil, 0), revocation.SessionRevoked, protocol.ReasonIdle},
		{"revocation expired", keys("u", "old", nil, 0), revocation.Clear, ""},
		{"revoked token", keys("u", "live", &sum, 0), revocation.TokenRevoked, protocol.ReasonReuse},
		{"blocked before revoked", keys("blocked", "gone", nil, 0), revocation.UserBlocked, protocol.ReasonBlocked},
		{"blocked with a reason", keys("blocked-why", "", nil, 0), revocation.UserBlocked, "fraud"},
		{"issued before the cut", keys("cut", "live", nil, 999), revocation.NotBeforeCut, protocol.ReasonNotBefore},
		{"issued after the cut", keys("cut", "live", nil, 1000), revocation.Clear, ""},
		{"no iat: cut", keys("cut", "live", nil, 0), revocation.NotBeforeCut, protocol.ReasonNotBefore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, reason := s.CheckToken(tc.k, n)
			assert.Equal(t, tc.want, v)
			assert.Equal(t, tc.reason, reason)
		})
	}
	// The same answers as the single lookups.
	r, ok := s.Blocked("blocked-why", n)
	assert.True(t, ok)
	assert.Equal(t, "fraud", r)
	at, ok := s.NotBefore("cut", n)
	assert.True(t, ok)
	assert.EqualValues(t, 1000, at)
}

func TestStamp(t *testing.T) {
	a, b := revocation.New(), revocation.New()
	assert.NotEqual(t, a.Stamp(), b.Stamp(), "two states never share a stamp")
	assert.NotEqual(t, revocation.Stamp{}, a.Stamp())
	snapshot(t, a, protocol.Change{Seq: 1, Op: protocol.OpRevoke, Key: "sid:x", Exp: exp(time.Minute)})
	s1 := a.Stamp()
	a.Prune(now.Add(time.Hour))
	assert.Equal(t, s1, a.Stamp(), "pruning only removes entries")
	_, err := a.ApplyPage(page(t, protocol.SyncPage{Epoch: "e1", Cursor: 2, Changes: []protocol.Change{{Seq: 2, Op: protocol.OpBlock, User: "u"}}}), now)
	require.NoError(t, err)
	assert.NotEqual(t, s1, a.Stamp(), "a page may add entries")
	c, err := revocation.Unmarshal(marshal(a))
	require.NoError(t, err)
	assert.NotEqual(t, a.Stamp(), c.Stamp(), "an adopted state is another state")
}
