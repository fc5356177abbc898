-- 0017: account health from Meta's webhooks (quality, limits, restrictions, templates).
-- Every health event as it came (idempotent by fingerprint), newest shown first.
CREATE TABLE health_events (
    id           INTEGER PRIMARY KEY,
    fingerprint  TEXT NOT NULL UNIQUE,  -- sha256 of waba id + event JSON: re-runs insert nothing
    waba_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,         -- number_quality, account, template_status, …
    summary      TEXT NOT NULL,
    event_json   TEXT NOT NULL,
    job_id       INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX health_events_recent ON health_events (created_at DESC, id DESC);

-- The current state of each business number, by its display number (the webhook's key).
CREATE TABLE number_health (
    display_phone_number TEXT PRIMARY KEY,
    quality_rating       TEXT NOT NULL DEFAULT 'UNKNOWN'
                         CHECK (quality_rating IN ('GREEN', 'YELLOW', 'RED', 'UNKNOWN')),
    limit_tier           TEXT,
    last_event           TEXT NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- The current state of each WhatsApp Business Account.
CREATE TABLE account_health (
    waba_id      TEXT PRIMARY KEY,
    restricted   INTEGER NOT NULL DEFAULT 0,
    last_event   TEXT NOT NULL,
    detail       TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The current state of each template (name + language, as sends name them).
CREATE TABLE template_health (
    name         TEXT NOT NULL,
    language     TEXT NOT NULL,
    template_id  TEXT NOT NULL,
    status       TEXT,                  -- TemplateStatus; NULL: only category/quality heard
    reason       TEXT,
    category     TEXT,
    quality      TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (name, language)
);
