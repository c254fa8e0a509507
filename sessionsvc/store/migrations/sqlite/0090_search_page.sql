-- A search page by login time (issue 15): a common term (a country matches
-- about one session in 18) walks the login-time index until the page is
-- full, ~18,000 entries for 1,000 rows. With the searched columns in that
-- index, SQLite tests the LIKE on the index entry and reads the table row
-- only for a match (1,000 rows, not 18,000 wide ones). The index keeps its
-- name and its leading columns, so every other walk by login time is
-- unchanged; activity (last_active) does not touch it.
DROP INDEX sessions_login_time_id;
CREATE INDEX sessions_login_time_id ON sessions (login_time, id, user_id, ip, country, browser_name, os_name);
