-- Admin reads at a million sessions (issue 15). Every sort of the admin
-- list has an index ending in id (the tie-break of the ORDER BY and of the
-- keyset cursor), so a page is read by walking an index and stopping after
-- it. last_active has two partial indexes, active and ended: activity only
-- updates active sessions, so the ended one costs activity nothing, and a
-- list over both merges the two walks (see ListSessions).
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
-- counts rows. Activity does not touch active, so it never fires these.
CREATE TABLE session_counts (
    slot   INTEGER PRIMARY KEY,
    total  INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0
);
INSERT INTO session_counts (slot, total, active) SELECT 0, COUNT(*), COALESCE(SUM(active), 0) FROM sessions;
CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions BEGIN UPDATE session_counts SET total = total + 1, active = active + new.active WHERE slot = 0; END;
CREATE TRIGGER session_counts_delete AFTER DELETE ON sessions BEGIN UPDATE session_counts SET total = total - 1, active = active - old.active WHERE slot = 0; END;
CREATE TRIGGER session_counts_update AFTER UPDATE OF active ON sessions WHEN old.active <> new.active BEGIN UPDATE session_counts SET active = active + new.active - old.active WHERE slot = 0; END;
