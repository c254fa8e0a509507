-- Admin reads at a million sessions (issue 15). Every sort of the admin
-- list has an index ending in id (the tie-break of the ORDER BY and of the
-- keyset cursor), so a page is read by walking an index and stopping after
-- it. last_active has two partial indexes, active and ended: activity only
-- updates active sessions, and a list over both merges the two walks (see
-- ListSessions). Substring search uses pg_trgm when it can be installed
-- (created at start-up, not here: see ensureTrigram).
DROP INDEX sessions_login_time;
CREATE INDEX sessions_login_time_id ON sessions (login_time, id);
DROP INDEX sessions_active_login_time;
CREATE INDEX sessions_active_login_time_id ON sessions (login_time, id) WHERE active;
DROP INDEX sessions_active_last_active;
CREATE INDEX sessions_active_last_active_id ON sessions (last_active, id) WHERE active;
CREATE INDEX sessions_ended_last_active_id ON sessions (last_active, id) WHERE NOT active;
DROP INDEX sessions_ended_logout_time;
CREATE INDEX sessions_ended_logout_time_id ON sessions (logout_time, id) WHERE NOT active;
DROP INDEX sessions_user_login_time;
CREATE INDEX sessions_user_login_time_id ON sessions (user_id, login_time, id);
CREATE INDEX sessions_ip_id ON sessions (ip, id);
CREATE INDEX sessions_score_id ON sessions (security_score, id);
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
