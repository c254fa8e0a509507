-- Login protection (issue 13): one counter row per scope ("ident:<normalised
-- identifier>" or "ip:<address or IPv6 /64>"), updated by one atomic upsert
-- per failed login so that every replica agrees, and the audit trail of
-- locks and unlocks. Times are Unix milliseconds.
CREATE TABLE login_counters (
    scope        TEXT PRIMARY KEY,
    kind         TEXT    NOT NULL,               -- identifier | ip
    subject      TEXT    NOT NULL,               -- the normalised identifier or the address
    failures     BIGINT  NOT NULL,
    window_start BIGINT  NOT NULL,
    last_failure BIGINT  NOT NULL,
    locked_until BIGINT  NOT NULL DEFAULT 0,     -- > now: locked
    locked_at    BIGINT  NOT NULL DEFAULT 0,
    just_locked  BOOLEAN NOT NULL DEFAULT FALSE, -- set by the upsert that locked it (RETURNING)
    pending      BIGINT  NOT NULL DEFAULT 0,     -- attempts let through the check, not yet reported
    pending_at   BIGINT  NOT NULL DEFAULT 0,     -- last such attempt (pending expires after a while)
    check_ok     BOOLEAN NOT NULL DEFAULT TRUE   -- set by the check's upsert (RETURNING)
);
CREATE INDEX login_counters_locked ON login_counters (locked_until) WHERE locked_until > 0;
CREATE INDEX login_counters_last_failure ON login_counters (last_failure);

CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT  NOT NULL,
    event        TEXT    NOT NULL,
    subject_kind TEXT    NOT NULL DEFAULT '',
    subject      TEXT    NOT NULL DEFAULT '',
    actor        TEXT    NOT NULL DEFAULT '',
    detail       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
