package revocation_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/meshsession/meshsession/plugin/core/revocation"
	"github.com/meshsession/meshsession/plugin/protocol"
)

func FuzzApplyPage(f *testing.F) {
	f.Add([]byte(`{"epoch":"e1","cursor":3,"reset":true,"changes":[{"seq":1,"op":"revoke","key":"sid:a","exp":1},{"seq":2,"op":"block","user":"u"},{"seq":3,"op":"not_before","user":"v","at":5}]}`))
	f.Add([]byte(`{"epoch":"e1","cursor":4,"changes":[{"seq":4,"op":"unrevoke","key":"fp:x"}]}`))
	f.Add([]byte(`{"epoch":"e1","cursor":2,"more":true,"reset":true,"changes":[{"seq":2,"op":"revoke","key":"sid:b"}]}`))
	f.Add([]byte(`{"epoch":"e1","cursor":1,"changes":[{"seq":1,"seq":2}]}`))
	f.Add([]byte(`[]`))
	for _, p := range []protocol.SyncPage{
		{Epoch: "e1", Cursor: 3, Reset: true, Changes: []protocol.Change{{Seq: 1, Op: "revoke", Key: "sid:a", Exp: 1}, {Seq: 2, Op: "block", User: "u"}, {Seq: 3, Op: "not_before", User: "v", At: 5}}},
		{Epoch: "e1", Cursor: 4, Changes: []protocol.Change{{Seq: 4, Op: "unrevoke", Key: "fp:x", Reason: "r"}, {Seq: 5, Op: "unblock", User: "u"}}},
		{Epoch: "e1", Cursor: 2, More: true, Reset: true},
	} {
		b, err := protocol.AppendBinaryPage(nil, &p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := revocation.New()
		_, _ = s.ApplyPage([]byte(`{"epoch":"e1","cursor":1,"reset":true,"changes":[{"seq":1,"op":"revoke","key":"sid:z"}]}`), now)
		before := s.Dump()
		_, err := s.ApplyPage(data, now)
		if err != nil {
			if before != s.Dump() {
				t.Fatal("rejected page changed the state")
			}
			return
		}
		// Whatever was applied serialises and reloads identically.
		s2, err := revocation.Unmarshal(marshal(s))
		if err != nil {
			t.Fatalf("unmarshal own output: %v", err)
		}
		if want, got := s.Dump(), s2.Dump(); !sameLive(want, got) {
			t.Fatalf("round trip differs:\n%s\n---\n%s", want, got)
		}
	})
}

func FuzzUnmarshalState(f *testing.F) {
	s := revocation.New()
	_, _ = s.ApplyPage([]byte(`{"epoch":"e1","cursor":3,"reset":true,"changes":[{"seq":1,"op":"revoke","key":"sid:a","reason":"x"},{"seq":2,"op":"block","user":"u"},{"seq":3,"op":"not_before","user":"v","at":5}]}`), now)
	for _, st := range []*revocation.State{s, revocation.New()} {
		meta, table := marshal(st)
		f.Add(meta, table)
	}
	f.Add([]byte("MSRV\x03"), []byte{})
	f.Fuzz(func(t *testing.T, meta, table []byte) {
		// Half the inputs get a correct checksum, so that the parser behind
		// it is explored too, not only the checksum's refusal.
		if len(meta) > 4 && meta[len(meta)-1]&1 == 0 {
			meta = binary.LittleEndian.AppendUint32(meta[:len(meta)-4:len(meta)-4], crc32.ChecksumIEEE(meta[:len(meta)-4]))
		}
		_, _ = revocation.PeekHeader(meta)
		st, err := revocation.Unmarshal(meta, table)
		if err != nil {
			return
		}
		_, _ = st.Revoked("sid:a", 0)
		_, _ = st.Blocked("u", 0)
		_, _ = st.ApplyPage([]byte(`{"epoch":"e1","cursor":100,"changes":[{"seq":100,"op":"revoke","key":"sid:q","reason":"new"}]}`), now)
		_, _ = st.Marshal()
		_ = protocol.OpRevoke
	})
}

// marshal serialises s, with a table of its own (Marshal's is a view of
// s's memory, and Unmarshal takes the table it is given).
func marshal(s *revocation.State) (meta, table []byte) {
	meta, table = s.Marshal()
	return meta, bytes.Clone(table)
}

// sameLive compares the live parts of two dumps.
func sameLive(a, b string) bool {
	return liveLines(a) == liveLines(b)
}

func liveLines(d string) string {
	var out []string
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "live ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
