-- Substring search over sessions (admin API and dashboard) without reading
-- every row: an FTS5 trigram index of the searched columns, keyed by the
-- sessions table's rowid and kept in step by triggers. Contentless: it
-- stores only the index. Queries re-check candidates with LIKE, so a rowid
-- change (only VACUUM does that; sessionsvc never runs it) could lose
-- matches but never show a wrong row. Terms under 3 characters fall back
-- to LIKE alone.
CREATE VIRTUAL TABLE sessions_search USING fts5(user_id, ip, country, browser_name, os_name, id, content='', contentless_delete=1, tokenize='trigram');
CREATE TRIGGER sessions_search_insert AFTER INSERT ON sessions BEGIN INSERT INTO sessions_search (rowid, user_id, ip, country, browser_name, os_name, id) VALUES (new.rowid, new.user_id, new.ip, new.country, new.browser_name, new.os_name, new.id); END;
CREATE TRIGGER sessions_search_delete AFTER DELETE ON sessions BEGIN DELETE FROM sessions_search WHERE rowid = old.rowid; END;
CREATE TRIGGER sessions_search_update AFTER UPDATE OF user_id, ip, country, browser_name, os_name, id ON sessions BEGIN DELETE FROM sessions_search WHERE rowid = old.rowid; INSERT INTO sessions_search (rowid, user_id, ip, country, browser_name, os_name, id) VALUES (new.rowid, new.user_id, new.ip, new.country, new.browser_name, new.os_name, new.id); END;
INSERT INTO sessions_search (rowid, user_id, ip, country, browser_name, os_name, id) SELECT rowid, user_id, ip, country, browser_name, os_name, id FROM sessions;
