package store

import (
	"context"
	"maps"
	"strings"
)

// SessionAppIDs returns, for each of the sessions ids that has one, the id
// the app sees for it (the value the filter puts in x-session-id): the
// token's session claim when it carried one ("sid:<v>" key, returned as
// <v>), else the newest access-token key ("fp:<…>", returned whole).
// Sessions with neither are missing from the map.
func (s *sqlStore) SessionAppIDs(ctx context.Context, ids []string) (map[string]string, error) {
	ids = nonEmpty(ids)
	if len(ids) <= appIDChunk {
		return s.appIDs(ctx, ids)
	}
	// A page of 1,000 sessions: its chunks one after the other, on the
	// connection the page was read on (the pool hands back the last one
	// returned). Read at once, each on a connection of its own, they saved
	// a few ms but sent the next page to a connection that had not read it:
	// its first read there took 30–50 ms more (SQLite maps and caches pages
	// per connection; a new PostgreSQL backend plans and loads its catalog).
	out := make(map[string]string, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), appIDChunk)
		got, err := s.appIDs(ctx, ids[:n])
		if err != nil {
			return nil, err
		}
		maps.Copy(out, got)
		ids = ids[n:]
	}
	return out, nil
}

// appIDChunk: the session ids one app-id query looks up.
const appIDChunk = 500

// appIDs is SessionAppIDs for at most appIDChunk ids, in one query.
func (s *sqlStore) appIDs(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// Session keys first, then access keys newest (latest expiry) first:
	// the first row per session wins.
	rows, err := s.read(ctx, `SELECT session_id, key, kind FROM session_keys
		WHERE session_id IN (`+s.placeholders(1, len(ids))+`) AND kind IN ('session', 'access')
		ORDER BY session_id, CASE kind WHEN 'session' THEN 0 ELSE 1 END, expires_at DESC, key`, stringArgs(ids)...)
	if err != nil {
		return nil, s.wrap("session app ids", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid, key, kind string
		if err := rows.Scan(&sid, &key, &kind); err != nil {
			return nil, s.wrap("session app ids", err)
		}
		if _, done := out[sid]; done {
			continue
		}
		if kind == string(KeySession) {
			key = strings.TrimPrefix(key, "sid:")
		}
		out[sid] = key
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("session app ids", err)
	}
	return out, nil
}

// UserIDByLookup returns the user id of the newest session whose
// user_lookup holds one of tokens (a documentId's keyed hash): how a user
// documentId in a route finds its user. ErrNotFound when none does.
func (s *sqlStore) UserIDByLookup(ctx context.Context, tokens []string) (string, error) {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 {
		return "", s.wrap("user by lookup", ErrNotFound)
	}
	params := make([]string, len(tokens))
	args := make([]any, len(tokens))
	for i, t := range tokens {
		args[i] = t
		params[i] = s.d.bindvar(i + 1)
	}
	var id string
	err := s.readRow(ctx, `SELECT user_id FROM sessions WHERE `+s.sessionKey()+` IN (`+s.lookupSessions(strings.Join(params, ", "))+
		`) ORDER BY login_time DESC LIMIT 1`, args...).Scan(&id)
	if err != nil {
		return "", s.wrap("user by lookup", err)
	}
	return id, nil
}
