package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The sync feed in binary. A proxy asks for it with FormatBinary in the
// format query parameter of PathSync; sessionsvc then answers with
// ContentTypeBinaryPage and the page below instead of JSON. JSON stays the
// default (and what a sessionsvc that does not know the parameter sends):
// the plugin reads both. The binary form exists for snapshots: a
// 100,000-entry page decodes about ten times faster in the Wasm VM than the
// same page in JSON, and is a fifth smaller.
//
// Layout (uvarint = encoding/binary's unsigned varint; str = uvarint length
// then the bytes):
//
//	"MSSP" | format byte (1) | flags byte (1 = more, 2 = reset)
//	| epoch str | cursor uvarint | now uvarint | total uvarint
//	| reason count uvarint (at most 255) | reason str ...
//	| change count uvarint | change ...
//
// A change is: op byte (BinOpRevoke..BinOpNotBefore) | seq step uvarint
// (the seq minus the previous change's seq, or minus 0 for the first; at
// least 1, so seqs ascend) | key: for revoke and unrevoke, the key's
// KeyHash (8 bytes, little endian; the plugin holds keys by it), for
// block, unblock and not_before, the bare user id as a str | exp uvarint
// | at uvarint (only for not_before) | reason index byte (into the reason
// list). Nothing follows the last change.
const (
	FormatBinary          = "binary"
	ContentTypeBinaryPage = "application/vnd.meshsession.sync-page"
	BinaryPageMagic       = "MSSP"
	BinaryPageFormat      = 1

	BinFlagMore  = 1
	BinFlagReset = 2

	BinOpRevoke    = 1
	BinOpUnrevoke  = 2
	BinOpBlock     = 3
	BinOpUnblock   = 4
	BinOpNotBefore = 5

	// MaxBinaryReasons is the size of a page's reason list.
	MaxBinaryReasons = 255
	// MaxKeyLen bounds a key or user id in the feed (either form).
	MaxKeyLen = 1024
)

// binaryOp is the binary code of an op name (0 when unknown).
func binaryOp(name string) byte {
	switch name {
	case OpRevoke:
		return BinOpRevoke
	case OpUnrevoke:
		return BinOpUnrevoke
	case OpBlock:
		return BinOpBlock
	case OpUnblock:
		return BinOpUnblock
	case OpNotBefore:
		return BinOpNotBefore
	}
	return 0
}

// BinaryOpName is the op name of a binary op code ("" when unknown).
func BinaryOpName(code byte) string {
	switch code {
	case BinOpRevoke:
		return OpRevoke
	case BinOpUnrevoke:
		return OpUnrevoke
	case BinOpBlock:
		return OpBlock
	case BinOpUnblock:
		return OpUnblock
	case BinOpNotBefore:
		return OpNotBefore
	}
	return ""
}

// AppendBinaryPage appends p in the binary form to b. It fails, appending
// nothing, when a change has an unknown op, a negative or non-ascending
// seq, negative times, or the page has more than MaxBinaryReasons distinct
// reasons.
func AppendBinaryPage(b []byte, p *SyncPage) ([]byte, error) {
	if p.Cursor < 0 || p.Now < 0 || p.Total < 0 {
		return b, errors.New("binary sync page: negative cursor, now or total")
	}
	start := len(b)
	fail := func(err error) ([]byte, error) { return b[:start], err }
	var reasons []string
	index := map[string]byte{}
	for i := range p.Changes {
		r := p.Changes[i].Reason
		if _, ok := index[r]; ok {
			continue
		}
		if len(reasons) == MaxBinaryReasons {
			return fail(fmt.Errorf("binary sync page: more than %d distinct reasons", MaxBinaryReasons))
		}
		index[r] = byte(len(reasons))
		reasons = append(reasons, r)
	}
	b = append(b, BinaryPageMagic...)
	b = append(b, BinaryPageFormat)
	var flags byte
	if p.More {
		flags |= BinFlagMore
	}
	if p.Reset {
		flags |= BinFlagReset
	}
	b = append(b, flags)
	b = appendStr(b, p.Epoch)
	b = binary.AppendUvarint(b, uint64(p.Cursor))
	b = binary.AppendUvarint(b, uint64(p.Now))
	b = binary.AppendUvarint(b, uint64(p.Total))
	b = binary.AppendUvarint(b, uint64(len(reasons)))
	for _, r := range reasons {
		b = appendStr(b, r)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Changes)))
	var prev int64
	for i := range p.Changes {
		c := &p.Changes[i]
		op := binaryOp(c.Op)
		if op == 0 {
			return fail(fmt.Errorf("binary sync page: changes[%d]: unknown op %q", i, c.Op))
		}
		if c.Seq <= prev {
			return fail(fmt.Errorf("binary sync page: changes[%d]: seq %d not above %d", i, c.Seq, prev))
		}
		if c.Exp < 0 || c.At < 0 {
			return fail(fmt.Errorf("binary sync page: changes[%d]: negative time", i))
		}
		b = append(b, op)
		b = binary.AppendUvarint(b, uint64(c.Seq-prev))
		prev = c.Seq
		switch op {
		case BinOpRevoke, BinOpUnrevoke:
			if err := checkKey(c.Key); err != nil {
				return fail(fmt.Errorf("binary sync page: changes[%d]: %w", i, err))
			}
			b = binary.LittleEndian.AppendUint64(b, KeyHash(c.Key))
		default:
			user := c.User
			if user == "" {
				// As in JSON, a user may come as the key "user:<id>".
				if len(c.Key) > len(PrefixUser) && c.Key[:len(PrefixUser)] == PrefixUser {
					user = c.Key[len(PrefixUser):]
				}
			} else if len(user) > len(PrefixUser) && user[:len(PrefixUser)] == PrefixUser {
				user = user[len(PrefixUser):]
			}
			if user == "" || len(user) > MaxKeyLen {
				return fail(fmt.Errorf("binary sync page: changes[%d]: op %q needs a user id of 1 to %d bytes", i, c.Op, MaxKeyLen))
			}
			b = appendStr(b, user)
		}
		b = binary.AppendUvarint(b, uint64(c.Exp))
		if op == BinOpNotBefore {
			b = binary.AppendUvarint(b, uint64(c.At))
		}
		b = append(b, index[c.Reason])
	}
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// checkKey refuses what the plugin refuses in a JSON page's revoke and
// unrevoke changes.
func checkKey(key string) error {
	var rest string
	switch {
	case len(key) > MaxKeyLen:
		return fmt.Errorf("key longer than %d bytes", MaxKeyLen)
	case len(key) >= len(PrefixSession) && key[:len(PrefixSession)] == PrefixSession:
		rest = key[len(PrefixSession):]
	case len(key) >= len(PrefixFingerprint) && key[:len(PrefixFingerprint)] == PrefixFingerprint:
		rest = key[len(PrefixFingerprint):]
	default:
		return fmt.Errorf("key %.40q does not start with %q or %q", key, PrefixSession, PrefixFingerprint)
	}
	if rest == "" {
		return fmt.Errorf("empty key value in %q", key)
	}
	return nil
}
