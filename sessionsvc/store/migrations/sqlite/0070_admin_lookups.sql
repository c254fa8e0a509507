-- Admin reads at a million sessions, continued (issue 15).
--
-- Names and emails: a search matches a session whose user_lookup (the
-- space-separated keyed hashes of its user's names, migration 0040) holds
-- one of the term's tokens. session_lookup holds each token with the rowid
-- of its session, kept by triggers, so that the match is an index lookup
-- rather than a LIKE over every row. Tokens are "k:" and hex digits, so
-- json_each splits the list (a CTE is not allowed in a trigger).
CREATE TABLE session_lookup (
    token TEXT NOT NULL,
    sid   INTEGER NOT NULL,
    PRIMARY KEY (token, sid)
) WITHOUT ROWID;
INSERT OR IGNORE INTO session_lookup (token, sid) SELECT j.value, s.rowid FROM sessions s, json_each('["' || replace(s.user_lookup, ' ', '","') || '"]') j WHERE s.user_lookup <> '' AND j.value <> '';
CREATE TRIGGER session_lookup_insert AFTER INSERT ON sessions WHEN new.user_lookup <> '' BEGIN INSERT OR IGNORE INTO session_lookup (token, sid) SELECT value, new.rowid FROM json_each('["' || replace(new.user_lookup, ' ', '","') || '"]') WHERE value <> ''; END;
CREATE TRIGGER session_lookup_delete AFTER DELETE ON sessions WHEN old.user_lookup <> '' BEGIN DELETE FROM session_lookup WHERE sid = old.rowid AND token IN (SELECT value FROM json_each('["' || replace(old.user_lookup, ' ', '","') || '"]')); END;
CREATE TRIGGER session_lookup_update AFTER UPDATE OF user_lookup ON sessions BEGIN DELETE FROM session_lookup WHERE sid = old.rowid AND token IN (SELECT value FROM json_each('["' || replace(old.user_lookup, ' ', '","') || '"]')); INSERT OR IGNORE INTO session_lookup (token, sid) SELECT value, new.rowid FROM json_each('["' || replace(new.user_lookup, ' ', '","') || '"]') WHERE value <> ''; END;
-- Sorting by user id: (user_id, id) is the ORDER BY and the keyset cursor
-- (sessions_user_login_time_id sorts each user's sessions again, and with
-- a status filter the planner preferred reading the whole table).
CREATE INDEX sessions_user_id_id ON sessions (user_id, id);
-- Counting the logged-out or terminated sessions (up to CountCap) reads
-- this index alone instead of a table row per ended session (active is in
-- it so that SQLite sees it covers the count).
CREATE INDEX sessions_ended_reason ON sessions (termination_reason, active) WHERE NOT active;
-- The id the app sees for each listed session (SessionAppIDs) is read from
-- this index alone, in the order that query wants: a page of 1,000 (the
-- export's, a list without pageSize) read a key row per session besides.
DROP INDEX session_keys_session;
CREATE INDEX session_keys_session ON session_keys (session_id, kind, expires_at, key);
