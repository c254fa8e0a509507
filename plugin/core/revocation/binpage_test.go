package revocation_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

func binPage(t testing.TB, p protocol.SyncPage) []byte {
	t.Helper()
	b, err := protocol.AppendBinaryPage(nil, &p)
	require.NoError(t, err)
	return b
}

// randomFeed is a feed of pages over a small key space: snapshots (some in
// several pages), incremental pages, every op, expired entries, unrevokes
// of unknown keys.
func randomFeed(rng *rand.Rand, pages int) []protocol.SyncPage {
	var feed []protocol.SyncPage
	var seq int64
	epoch := "e0"
	reasons := []string{"", protocol.ReasonManual, protocol.ReasonLogout, "custom"}
	change := func() protocol.Change {
		seq += 1 + rng.Int64N(3)
		c := protocol.Change{Seq: seq, Reason: reasons[rng.IntN(len(reasons))]}
		switch rng.IntN(10) {
		case 0, 1, 2, 3:
			c.Op, c.Key = protocol.OpRevoke, fmt.Sprintf("sid:s%d", rng.IntN(30))
		case 4:
			c.Op, c.Key = protocol.OpRevoke, "fp:"+strings.Repeat(string(rune('A'+rng.IntN(5))), 43)
		case 5:
			c.Op, c.Key = protocol.OpUnrevoke, fmt.Sprintf("sid:s%d", rng.IntN(30))
		case 6:
			c.Op, c.User = protocol.OpBlock, fmt.Sprintf("u%d", rng.IntN(5))
		case 7:
			c.Op, c.User = protocol.OpUnblock, fmt.Sprintf("user:u%d", rng.IntN(5))
		default:
			c.Op, c.User, c.At = protocol.OpNotBefore, fmt.Sprintf("u%d", rng.IntN(5)), now.Unix()-rng.Int64N(100)
		}
		switch rng.IntN(4) {
		case 0: // never expires
		case 1:
			c.Exp = now.Unix() - 3600 // expired: skipped
		default:
			c.Exp = now.Unix() + rng.Int64N(7200)
		}
		return c
	}
	for len(feed) < pages {
		if len(feed) == 0 || rng.IntN(6) == 0 {
			// a snapshot of 1 to 3 pages in a new epoch
			epoch = fmt.Sprintf("e%d", len(feed))
			seq = 0
			parts := 1 + rng.IntN(3)
			for i := 0; i < parts; i++ {
				p := protocol.SyncPage{Epoch: epoch, Reset: i == 0, More: i < parts-1, Now: now.Unix()}
				if i == 0 {
					p.Total = rng.Int64N(50) // a hint, right or wrong
				}
				for k := rng.IntN(12); k > 0; k-- {
					p.Changes = append(p.Changes, change())
				}
				p.Cursor = seq
				feed = append(feed, p)
			}
			continue
		}
		p := protocol.SyncPage{Epoch: epoch, Now: now.Unix()}
		for k := rng.IntN(6); k > 0; k-- {
			p.Changes = append(p.Changes, change())
		}
		p.Cursor = seq + rng.Int64N(2)
		seq = p.Cursor
		feed = append(feed, p)
	}
	return feed
}

// A feed read in binary leaves exactly the state the same feed leaves in JSON.
func TestBinaryPagesMatchJSON(t *testing.T) {
	for run := uint64(0); run < 30; run++ {
		rng := rand.New(rand.NewPCG(run, 7))
		js, bin := revocation.New(), revocation.New()
		for i, p := range randomFeed(rng, 25) {
			ra, errA := js.ApplyPage(page(t, p), now)
			rb, errB := bin.ApplyPage(binPage(t, p), now)
			require.NoError(t, errA, "run %d page %d", run, i)
			require.NoError(t, errB, "run %d page %d", run, i)
			require.Equal(t, ra, rb, "run %d page %d", run, i)
			require.Equal(t, js.Dump(), bin.Dump(), "run %d page %d", run, i)
		}
	}
}

func TestBinaryPageRejected(t *testing.T) {
	base := func() *revocation.State {
		s := revocation.New()
		snapshot(t, s, protocol.Change{Seq: 5, Op: protocol.OpRevoke, Key: "sid:a"})
		return s
	}
	good := binPage(t, protocol.SyncPage{Epoch: "e1", Cursor: 7, Now: 1, Changes: []protocol.Change{
		{Seq: 6, Op: protocol.OpRevoke, Key: "sid:x", Exp: now.Unix() + 60, Reason: "manual"},
		{Seq: 7, Op: protocol.OpNotBefore, User: "u", At: 3},
	}})
	// Offsets in good: "MSSP" 1 flags | 2 "e1" | cursor | now | 2 reasons ("manual", "") ...
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"format", mutate(func(b []byte) []byte { b[4] = 9; return b }), "unknown format 9"},
		{"flags", mutate(func(b []byte) []byte { b[5] = 0x80; return b }), "unknown flags"},
		{"trailing", append(append([]byte{}, good...), 0), "trailing bytes"},
		{"seq at cursor", binPage(t, protocol.SyncPage{Epoch: "e1", Cursor: 6, Changes: []protocol.Change{{Seq: 5, Op: protocol.OpRevoke, Key: "sid:x"}}}), "seq 5 not above 5"},
		{"cursor below last", binPage(t, protocol.SyncPage{Epoch: "e1", Cursor: 6, Changes: []protocol.Change{{Seq: 7, Op: protocol.OpRevoke, Key: "sid:x"}}}), "cursor 6 below the last seq 7"},
		{"not_before without at", binPage(t, protocol.SyncPage{Epoch: "e1", Cursor: 6, Changes: []protocol.Change{{Seq: 6, Op: protocol.OpNotBefore, User: "u"}}}), `needs "at"`},
		{"empty epoch", binPage(t, protocol.SyncPage{Cursor: 6}), `empty "epoch"`},
		{"other epoch", binPage(t, protocol.SyncPage{Epoch: "e2", Cursor: 6}), "request a snapshot"},
		{"user too long", longUser(t), "user longer than 1024 bytes"},
	}
	// The op byte of the first change, then a step 0, then a reason index
	// past the list: found by searching for the encoded first change.
	first := binary.LittleEndian.AppendUint64([]byte{protocol.BinOpRevoke, 6}, protocol.KeyHash("sid:x"))
	at := strings.Index(string(good), string(first))
	require.Positive(t, at)
	cases = append(cases,
		struct {
			name string
			body []byte
			want string
		}{"unknown op", mutate(func(b []byte) []byte { b[at] = 99; return b }), "unknown op code 99"},
		struct {
			name string
			body []byte
			want string
		}{"seq step 0", mutate(func(b []byte) []byte { b[at+1] = 0; return b }), "seq step 0"},
		struct {
			name string
			body []byte
			want string
		}{"hash 0", mutate(func(b []byte) []byte { copy(b[at+2:], make([]byte, 8)); return b }), "key hash 0"},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			before := s.Dump()
			_, err := s.ApplyPage(tc.body, now)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, before, s.Dump(), "state changed by a rejected page")
		})
	}
	// Every truncation of a good page is rejected whole.
	for i := 0; i < len(good); i++ {
		s := base()
		before := s.Dump()
		_, err := s.ApplyPage(good[:i], now)
		require.Error(t, err, "truncated at %d", i)
		require.Equal(t, before, s.Dump())
	}
	s := base()
	_, err := s.ApplyPage(good, now)
	require.NoError(t, err)
	_, ok := s.Revoked("sid:x", now.Unix())
	assert.True(t, ok)
}

// longUser is a page blocking a user id of 2,000 bytes (which the encoder
// refuses to write).
func longUser(t *testing.T) []byte {
	b := binPage(t, protocol.SyncPage{Epoch: "e1", Cursor: 6, Changes: []protocol.Change{{Seq: 6, Op: protocol.OpBlock, User: "@"}}})
	i := strings.Index(string(b), "\x01@")
	require.Positive(t, i)
	long := binary.AppendUvarint(append([]byte{}, b[:i]...), 2000)
	long = append(long, strings.Repeat("@", 2000)...)
	return append(long, b[i+2:]...)
}

func TestAppendBinaryPageRefuses(t *testing.T) {
	for name, p := range map[string]protocol.SyncPage{
		"unknown op":      {Epoch: "e", Changes: []protocol.Change{{Seq: 1, Op: "nuke"}}},
		"seq order":       {Epoch: "e", Changes: []protocol.Change{{Seq: 2, Op: "revoke", Key: "sid:a"}, {Seq: 2, Op: "revoke", Key: "sid:b"}}},
		"negative exp":    {Epoch: "e", Changes: []protocol.Change{{Seq: 1, Op: "revoke", Key: "sid:a", Exp: -1}}},
		"negative cursor": {Epoch: "e", Cursor: -1},
		"bad prefix":      {Epoch: "e", Changes: []protocol.Change{{Seq: 1, Op: "revoke", Key: "user:x"}}},
		"empty key":       {Epoch: "e", Changes: []protocol.Change{{Seq: 1, Op: "unrevoke", Key: "sid:"}}},
		"key too long":    {Epoch: "e", Changes: []protocol.Change{{Seq: 1, Op: "revoke", Key: "sid:" + strings.Repeat("k", 2000)}}},
		"no user":         {Epoch: "e", Changes: []protocol.Change{{Seq: 1, Op: "block"}}},
	} {
		b, err := protocol.AppendBinaryPage([]byte("keep"), &p)
		assert.Error(t, err, name)
		assert.Equal(t, "keep", string(b), name)
	}
	var many protocol.SyncPage
	many.Epoch = "e"
	for i := 0; i < 300; i++ {
		many.Changes = append(many.Changes, protocol.Change{Seq: int64(i + 1), Op: "revoke", Key: "sid:a", Reason: fmt.Sprint("r", i)})
	}
	_, err := protocol.AppendBinaryPage(nil, &many)
	assert.ErrorContains(t, err, "distinct reasons")
}
