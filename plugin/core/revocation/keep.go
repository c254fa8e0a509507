package revocation

// A revocation this worker has seen is kept until it expires, whatever a
// later snapshot says: sessionsvc restarted on an empty database (a new
// epoch) or restored from a backup (its log goes back) hands out a
// snapshot that lacks revocations made before the reset or since the
// backup, and dropping them would let their tokens pass again. Only an
// explicit lift in the feed removes an entry before its expiry: an
// "unrevoke" or "unblock" change, in a delta page or in the snapshot
// itself (sessionsvc lists a snapshot's lifts, so that a lift made after
// the reset is not mistaken for "absent from the snapshot").

// lifts are the keys and users a snapshot being built lifted explicitly.
type lifts struct {
	keys  hashTable[entry] // protocol.KeyHash of "sid:"/"fp:" keys
	users hashTable[entry] // UserHash of users
}

// Kept counts what a snapshot kept of the state it replaced (Applied.Kept).
type Kept struct {
	Revoked, Blocked, NotBefore int
}

// Total is the number of entries kept.
func (k Kept) Total() int { return k.Revoked + k.Blocked + k.NotBefore }

// keepFrom copies into t (a complete snapshot) every entry of old that is
// still live at now, that t lacks and that the snapshot did not lift; an
// entry t holds too keeps the later expiry (a not-before time the later
// cut). It returns what it added.
func (t *table) keepFrom(old *table, l *lifts, now int64) Kept {
	var k Kept
	var liftedKeys, liftedUsers *hashTable[entry]
	if l != nil {
		liftedKeys, liftedUsers = &l.keys, &l.users
	}
	k.Revoked = keepEntries(&t.revoked, &old.revoked, liftedKeys, now)
	k.Blocked = keepEntries(&t.blocked, &old.blocked, liftedUsers, now)
	for _, s := range old.notBefore.slots {
		if s.h == 0 || !live(s.e.exp, now) {
			continue
		}
		e := s.e
		if cur, ok := t.notBefore.get(s.h); ok {
			e.at = max(e.at, cur.at)
			if cur.exp == 0 || (e.exp != 0 && cur.exp > e.exp) {
				e.exp = cur.exp
			}
			t.notBefore.put(s.h, e)
			continue
		}
		t.notBefore.put(s.h, e)
		k.NotBefore++
	}
	return k
}

// keepEntries copies into dst every entry of src that is live at now and not
// in lifted (nil: nothing lifted); an entry dst holds too keeps the later
// expiry. It returns how many entries it added.
func keepEntries(dst, src, lifted *hashTable[entry], now int64) int {
	added := 0
	for _, s := range src.slots {
		if s.h == 0 || !live(s.e.exp(), now) {
			continue
		}
		if lifted != nil && lifted.n != 0 {
			if _, ok := lifted.get(s.h); ok {
				continue
			}
		}
		if cur, ok := dst.get(s.h); ok {
			dst.put(s.h, longer(s.e, cur))
			continue
		}
		dst.put(s.h, s.e)
		added++
	}
	return added
}
