-- Admin reads at a million sessions (issue 15). Every sort of the admin
-- list has an index ending in id (the tie-break of the ORDER BY and of the
-- keyset cursor), so a page is read by walking an index and stopping after
-- it. last_active has two partial indexes, active and ended: activity only
-- updates active sessions, and a list over both merges the two walks (see
-- ListSessions). Substring search uses pg_trgm when it can be installed
-- (created at start-up, not here: see ensureTrigram).
DROP INDEX sessions_login_time;
CREATE INDEX sessions_login_time_id ON sessions (login_time, id);
-- Fewer indexes than on SQLite: an activity update of last_active cannot be
-- HOT, so PostgreSQL writes an entry into every index the row is in (SQLite
-- only touches indexes holding last_active). The active list walks
-- sessions_login_time_id (most sessions are active); sorts by ip or score
-- sort their selection.
DROP INDEX sessions_active_login_time;
DROP INDEX sessions_active_last_active;
CREATE INDEX sessions_active_last_active_id ON sessions (last_active, id) WHERE active;
CREATE INDEX sessions_ended_last_active_id ON sessions (last_active, id) WHERE NOT active;
DROP INDEX sessions_ended_logout_time;
CREATE INDEX sessions_ended_logout_time_id ON sessions (logout_time, id) WHERE NOT active;
DROP INDEX sessions_user_login_time;
CREATE INDEX sessions_user_login_time_id ON sessions (user_id, login_time, id);
-- Maintained counts (all sessions, active ones), so an unfiltered list never
-- counts rows. 16 slots, summed by readers, so concurrent logins rarely
-- wait for one another's counter row; inserts and deletes are counted per
-- statement (a seed's COPY or a purge adds its change at once).
CREATE TABLE session_counts (
    slot   INTEGER PRIMARY KEY,
    total  BIGINT NOT NULL DEFAULT 0,
    active BIGINT NOT NULL DEFAULT 0
);
INSERT INTO session_counts (slot) SELECT generate_series(0, 15);
UPDATE session_counts SET total = c.total, active = c.active FROM (SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE active) AS active FROM sessions) AS c WHERE slot = 0;
CREATE FUNCTION session_counts_ins() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE s int := floor(random() * 16)::int; BEGIN UPDATE session_counts SET total = total + d.n, active = active + d.a FROM (SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE active) AS a FROM new_rows) AS d WHERE slot = s AND d.n > 0; RETURN NULL; END $$;
CREATE FUNCTION session_counts_del() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE s int := floor(random() * 16)::int; BEGIN UPDATE session_counts SET total = total - d.n, active = active - d.a FROM (SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE active) AS a FROM old_rows) AS d WHERE slot = s AND d.n > 0; RETURN NULL; END $$;
CREATE FUNCTION session_counts_upd() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE s int := floor(random() * 16)::int; BEGIN UPDATE session_counts SET active = active + (CASE WHEN NEW.active THEN 1 ELSE 0 END) - (CASE WHEN OLD.active THEN 1 ELSE 0 END) WHERE slot = s; RETURN NULL; END $$;
CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_counts_ins();
CREATE TRIGGER session_counts_delete AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION session_counts_del();
-- Row level, and only when active changes: activity (which sets last_active
-- alone) never fires it.
CREATE TRIGGER session_counts_update AFTER UPDATE OF active ON sessions FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active) EXECUTE FUNCTION session_counts_upd();
-- The text a substring search reads, one row per session, kept by triggers.
-- It lives apart from sessions so that its trigram index (pg_trgm, created
-- at start-up when the extension can be installed) is not rewritten by
-- every activity update: an update of last_active cannot be HOT (the
-- column is indexed), and a GIN index on sessions would take some forty
-- trigram entries per update.
CREATE TABLE session_search (
    id  TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
INSERT INTO session_search (id, doc) SELECT id, lower(user_id || E'\x1f' || ip || E'\x1f' || country || E'\x1f' || browser_name || E'\x1f' || os_name || E'\x1f' || id) FROM sessions;
CREATE FUNCTION session_search_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO session_search (id, doc) SELECT id, lower(user_id || E'\x1f' || ip || E'\x1f' || country || E'\x1f' || browser_name || E'\x1f' || os_name || E'\x1f' || id) FROM new_rows ON CONFLICT (id) DO UPDATE SET doc = excluded.doc; RETURN NULL; END $$;
CREATE FUNCTION session_search_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM session_search WHERE id IN (SELECT id FROM old_rows); RETURN NULL; END $$;
CREATE FUNCTION session_search_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE session_search SET id = NEW.id, doc = lower(NEW.user_id || E'\x1f' || NEW.ip || E'\x1f' || NEW.country || E'\x1f' || NEW.browser_name || E'\x1f' || NEW.os_name || E'\x1f' || NEW.id) WHERE id = OLD.id; RETURN NULL; END $$;
CREATE TRIGGER session_search_insert AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_search_ins();
CREATE TRIGGER session_search_delete AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION session_search_del();
CREATE TRIGGER session_search_update AFTER UPDATE OF id, user_id, ip, country, browser_name, os_name ON sessions FOR EACH ROW EXECUTE FUNCTION session_search_upd();
