-- Refused logins by reason, for the dashboard's analytics: one row per login
-- refused, written where the refusal is decided (credentials: a failed login
-- reported by the proxy; lockout: the pre-login check or the registration
-- refused it as locked, attempts in flight included; policy: the pre-login
-- check, the registration or an unreadable login answer refused by the
-- login policy; blocked: the registration of a blocked user's login).
-- Counted per minute and reason (at: the minute's start), so a flood of
-- refused attempts adds to a row a minute instead of a row an attempt.
-- Deleted RETENTION after (the lifecycle jobs), so a count for a past range
-- does not change: it does not depend on failed_logins (pruned per address
-- by each new failure) nor on the revocation log (compacted when its
-- tokens expire, and written by admin blocks too).
-- Times are Unix milliseconds.
CREATE TABLE login_refusals (
    at     BIGINT NOT NULL,
    reason TEXT   NOT NULL, -- credentials | lockout | policy | blocked
    n      BIGINT NOT NULL,
    PRIMARY KEY (at, reason)
);
-- Wrong credentials already on record keep counting (per address, as far
-- back as failed_logins still holds them); the other reasons had no record.
INSERT INTO login_refusals (at, reason, n)
    SELECT at / 60000 * 60000, 'credentials', COUNT(*) FROM failed_logins WHERE scope LIKE 'ip:%' GROUP BY at / 60000;
