-- Activity off the sessions row (issue 15). A mark used to be an update of
-- a random, wide sessions row that could not be HOT (last_active is
-- indexed): a new row version and an entry in every index. Activity now
-- upserts the session's latest mark here, a narrow table keyed by
-- session; a background merger (MergeActivity) moves the marks into
-- sessions.last_active in short chunks and deletes them. Point reads,
-- list rows, ending a session and the idle reaper read through this
-- table; the active/idle filters and the lastActive sort use the merged
-- column.
--
-- seq is the order a session's mark was first written: the merger takes
-- the oldest first, so every pending mark is merged within the backlog's
-- length (taken in id order, the same sessions' marks would be merged
-- again and again under steady activity, and others never). A later mark
-- of a pending session updates at alone: HOT.
CREATE TABLE session_seen (
    session_id TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY
) WITH (fillfactor = 70);
CREATE INDEX session_seen_seq ON session_seen (seq);
-- The sorts by ip and by security score, left out by 0070 while every
-- activity mark updated the row (each index cost activity a write per
-- mark): only the merger's updates write them now.
CREATE INDEX sessions_ip_id ON sessions (ip, id);
CREATE INDEX sessions_score_id ON sessions (security_score, id);
-- Activity finds each mark's session by its key: an index-only scan of
-- this one (the primary key reads the heap row besides; with this one
-- activity wrote about 1.5 times as many marks a second at a million
-- sessions). A login writes one more index entry per key.
CREATE INDEX session_keys_key_session ON session_keys (key) INCLUDE (session_id);
