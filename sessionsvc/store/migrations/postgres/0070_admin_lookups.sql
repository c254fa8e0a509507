-- Admin reads at a million sessions, continued (issue 15).
--
-- Names and emails: a search matches a session whose user_lookup (the
-- space-separated keyed hashes of its user's names, migration 0040) holds
-- one of the term's tokens. session_lookup holds each token with its
-- session's id, kept by triggers, so that the match is an index lookup
-- rather than a LIKE over every row.
CREATE TABLE session_lookup (
    token      TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (token, session_id)
);
INSERT INTO session_lookup (token, session_id) SELECT DISTINCT t, id FROM sessions, unnest(string_to_array(user_lookup, ' ')) AS t WHERE user_lookup <> '' AND t <> '';
CREATE FUNCTION session_lookup_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO session_lookup (token, session_id) SELECT DISTINCT t, id FROM new_rows, unnest(string_to_array(user_lookup, ' ')) AS t WHERE t <> '' ON CONFLICT DO NOTHING; RETURN NULL; END $$;
CREATE FUNCTION session_lookup_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM session_lookup l USING (SELECT t, id FROM old_rows, unnest(string_to_array(user_lookup, ' ')) AS t) AS o WHERE l.token = o.t AND l.session_id = o.id; RETURN NULL; END $$;
CREATE FUNCTION session_lookup_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM session_lookup WHERE session_id = OLD.id AND token = ANY (string_to_array(OLD.user_lookup, ' ')); INSERT INTO session_lookup (token, session_id) SELECT DISTINCT t, NEW.id FROM unnest(string_to_array(NEW.user_lookup, ' ')) AS t WHERE t <> '' ON CONFLICT DO NOTHING; RETURN NULL; END $$;
CREATE TRIGGER session_lookup_insert AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_lookup_ins();
CREATE TRIGGER session_lookup_delete AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION session_lookup_del();
-- Row level, only when the names or the id change: activity never fires it.
CREATE TRIGGER session_lookup_update AFTER UPDATE OF id, user_lookup ON sessions FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.user_lookup IS DISTINCT FROM NEW.user_lookup) EXECUTE FUNCTION session_lookup_upd();
-- Counting the logged-out or terminated sessions (up to CountCap) reads
-- this index alone. Partial on ended sessions, which activity never
-- updates, so it costs activity nothing.
CREATE INDEX sessions_ended_reason ON sessions (termination_reason, active) WHERE NOT active;
-- No (ip, id) or (security_score, id) index, unlike SQLite: with them a
-- page sorted by ip or score is an index walk (about 2 ms at a million
-- sessions instead of 0.4-2.6 s), but an activity update of last_active is
-- not HOT, so it writes an entry into each: activity fell to 0.6 of its
-- rate at 100k sessions. Until activity leaves the sessions row, those two
-- sorts read and sort the selection.
-- The id the app sees for each listed session (SessionAppIDs) is read from
-- this index alone, in the order that query wants: a page of 1,000 (the
-- export's, a list without pageSize) read a key row per session besides.
DROP INDEX session_keys_session;
CREATE INDEX session_keys_session ON session_keys (session_id, kind, expires_at, key);
