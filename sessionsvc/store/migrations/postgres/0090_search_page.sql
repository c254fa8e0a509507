-- A search page by login time (issue 15): a common term (a country matches
-- about one session in 18) walked the login-time index of sessions until
-- the page was full, reading ~18,000 wide rows for 1,000 matches.
-- session_search now carries login_time, with an index (login_time, id)
-- that includes doc: the page walks that narrow index (the LIKE tested on
-- its entries; activity never updates session_search, so its pages stay
-- visible to an index-only scan once vacuumed) and reads only the matching
-- sessions (see ListSessions). The table is rebuilt in login-time order;
-- its trigram index is rebuilt at start-up (ensureTrigram).
DROP TABLE session_search;
CREATE TABLE session_search (
    id         TEXT PRIMARY KEY,
    login_time BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
INSERT INTO session_search (id, login_time, doc) SELECT id, login_time, lower(user_id || E'\x1f' || ip || E'\x1f' || country || E'\x1f' || browser_name || E'\x1f' || os_name || E'\x1f' || id) FROM sessions ORDER BY login_time, id;
CREATE INDEX session_search_login_time_id ON session_search (login_time, id) INCLUDE (doc);
CREATE OR REPLACE FUNCTION session_search_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO session_search (id, login_time, doc) SELECT id, login_time, lower(user_id || E'\x1f' || ip || E'\x1f' || country || E'\x1f' || browser_name || E'\x1f' || os_name || E'\x1f' || id) FROM new_rows ON CONFLICT (id) DO UPDATE SET login_time = excluded.login_time, doc = excluded.doc; RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION session_search_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE session_search SET id = NEW.id, login_time = NEW.login_time, doc = lower(NEW.user_id || E'\x1f' || NEW.ip || E'\x1f' || NEW.country || E'\x1f' || NEW.browser_name || E'\x1f' || NEW.os_name || E'\x1f' || NEW.id) WHERE id = OLD.id; RETURN NULL; END $$;
DROP TRIGGER session_search_update ON sessions;
CREATE TRIGGER session_search_update AFTER UPDATE OF id, user_id, ip, country, browser_name, os_name, login_time ON sessions FOR EACH ROW EXECUTE FUNCTION session_search_upd();
-- Statistics now: until the table has them, the planner's guess of a
-- term's matches (see searchConds) is blind.
ANALYZE session_search;
