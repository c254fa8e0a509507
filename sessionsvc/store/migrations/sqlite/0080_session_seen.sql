-- Activity off the sessions row (issue 15). A mark used to rewrite a
-- random, wide sessions row and its last_active index entry (about 8 KB of
-- WAL per mark at a million sessions). Activity now upserts the session's
-- latest mark here, a narrow table keyed by session; a background merger
-- (MergeActivity) moves the marks into sessions.last_active in short chunks
-- and deletes them. Point reads, list rows, ending a session and the idle
-- reaper read through this table; the active/idle filters and the
-- lastActive sort use the merged column.
--
-- seq (the rowid) is the order a session's mark was first written: the
-- merger takes the oldest first, so every pending mark is merged within
-- the backlog's length (taken in id order, the same sessions' marks would
-- be merged again and again under steady activity, and others never).
CREATE TABLE session_seen (
    seq        INTEGER PRIMARY KEY,
    session_id TEXT    NOT NULL UNIQUE,
    at         INTEGER NOT NULL
);
-- Activity finds each mark's session by its key: from this index alone
-- (the key's primary key index points at the row, a second seek per mark;
-- with this one activity wrote about 1.25 times as many marks a second at
-- a million sessions). A login writes one more index entry per key.
CREATE INDEX session_keys_key_session ON session_keys (key, session_id);
