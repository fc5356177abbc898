-- 0006: live settings (the rollback switches), opt-outs, and an audit log.

-- Settings changed at run time; they override the config file until unset.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL
);

-- Who did what, for settings changes and erasures. Never holds message content.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL
);

-- A contact who sent STOP gets no bot messages until START.
ALTER TABLE contacts ADD COLUMN opted_out_at INTEGER;
