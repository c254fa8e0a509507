package server

import (
	"encoding/json"
	"strconv"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// appendSyncPage encodes a SyncPage exactly as encoding/json would (same
// field order, omitempty), several times faster: snapshots carry up to
// 100,000 changes.
func appendSyncPage(b []byte, p *protocol.SyncPage) []byte {
	b = append(b, `{"epoch":`...)
	b = appendJSONString(b, p.Epoch)
	b = append(b, `,"cursor":`...)
	b = strconv.AppendInt(b, p.Cursor, 10)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, p.More)
	b = append(b, `,"reset":`...)
	b = strconv.AppendBool(b, p.Reset)
	b = append(b, `,"now":`...)
	b = strconv.AppendInt(b, p.Now, 10)
	if p.Total != 0 {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, p.Total, 10)
	}
	b = append(b, `,"changes":[`...)
	for i := range p.Changes {
		c := &p.Changes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seq":`...)
		b = strconv.AppendInt(b, c.Seq, 10)
		b = append(b, `,"op":`...)
		b = appendJSONString(b, c.Op)
		if c.Key != "" {
			b = append(b, `,"key":`...)
			b = appendJSONString(b, c.Key)
		}
		if c.User != "" {
			b = append(b, `,"user":`...)
			b = appendJSONString(b, c.User)
		}
		if c.Exp != 0 {
			b = append(b, `,"exp":`...)
			b = strconv.AppendInt(b, c.Exp, 10)
		}
		if c.At != 0 {
			b = append(b, `,"at":`...)
			b = strconv.AppendInt(b, c.At, 10)
		}
		if c.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendJSONString(b, c.Reason)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// appendJSONString appends s as a JSON string; plain printable ASCII is
// copied, anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
