-- sessionsvc schema, SQLite dialect. Times are Unix milliseconds, except
-- revocation_log.exp and .at which are Unix seconds (protocol.Change).
CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT    NOT NULL,
    ip                  TEXT    NOT NULL DEFAULT '',
    user_agent          TEXT    NOT NULL DEFAULT '',
    login_time          INTEGER NOT NULL,
    last_active         INTEGER NOT NULL,
    logout_time         INTEGER,
    active              BOOLEAN NOT NULL,
    terminated_manually BOOLEAN NOT NULL DEFAULT FALSE,
    termination_reason  TEXT    NOT NULL DEFAULT '',
    device_type         TEXT    NOT NULL DEFAULT '',
    browser_name        TEXT    NOT NULL DEFAULT '',
    os_name             TEXT    NOT NULL DEFAULT '',
    geo                 TEXT,
    country             TEXT    NOT NULL DEFAULT '',
    security_score      INTEGER NOT NULL DEFAULT 100,
    score_reasons       TEXT    NOT NULL DEFAULT '[]',
    expires_at          INTEGER NOT NULL DEFAULT 0,
    route               TEXT    NOT NULL DEFAULT '',
    locale              TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_login_time ON sessions (user_id, login_time);
CREATE INDEX sessions_login_time ON sessions (login_time);
CREATE INDEX sessions_active_last_active ON sessions (last_active) WHERE active;
CREATE INDEX sessions_active_login_time ON sessions (login_time) WHERE active;
CREATE INDEX sessions_ended_logout_time ON sessions (logout_time) WHERE NOT active;

CREATE TABLE session_keys (
    key        TEXT PRIMARY KEY,
    session_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0,
    rotated_at INTEGER
);
CREATE INDEX session_keys_session ON session_keys (session_id);

CREATE TABLE user_blocks (
    user_id    TEXT PRIMARY KEY,
    blocked    BOOLEAN NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE revocation_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    op         TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    key        TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    exp        INTEGER NOT NULL DEFAULT 0,
    at         INTEGER NOT NULL DEFAULT 0,
    reason     TEXT    NOT NULL DEFAULT '',
    latest     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX revocation_log_subject_latest ON revocation_log (subject) WHERE latest;
CREATE INDEX revocation_log_live ON revocation_log (seq) WHERE latest AND op IN ('revoke', 'block', 'not_before');

CREATE TABLE admin_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE settings (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    doc TEXT NOT NULL
);

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event        TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT    NOT NULL DEFAULT '',
    dead         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_due ON alerts (next_attempt) WHERE sent_at IS NULL AND NOT dead;

CREATE TABLE failed_logins (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX failed_logins_scope_at ON failed_logins (scope, at);
