-- 0018: outbound webhooks for the team's other tools (docs/webhooks.md).
-- The configured endpoints, copied from the config at each start so a store write can
-- fan an event out to them in the same transaction as the change it reports. `pending`
-- counts the endpoint's undelivered rows (delivered rows leave it) and is capped at
-- `max_pending`; past the cap new events for it are counted in `dropped` instead.
CREATE TABLE webhook_endpoints (
    name        TEXT PRIMARY KEY,
    events      TEXT NOT NULL,          -- ',kind,kind,' or '*'
    max_pending INTEGER NOT NULL,
    pending     INTEGER NOT NULL DEFAULT 0,
    dropped     INTEGER NOT NULL DEFAULT 0
);

-- One row per event and endpoint (the outbox), written in the same transaction as the
-- change. Rows of one endpoint and ordering key (a conversation, an account) are
-- delivered in id order: only the oldest undelivered one has a job in the queue.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the job's dedupe key is hook:<id>
    endpoint     TEXT NOT NULL,
    event_id     TEXT NOT NULL,         -- the idempotency key, the same for every endpoint and attempt
    kind         TEXT NOT NULL,
    ordering_key TEXT NOT NULL,         -- conversation:<id> or account:<waba id>
    body         TEXT NOT NULL,         -- the JSON sent, frozen at the change
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    queued       INTEGER NOT NULL DEFAULT 0,  -- 1 once its job is in the queue
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (endpoint, event_id)
);
CREATE INDEX webhook_deliveries_line ON webhook_deliveries (endpoint, ordering_key, id) WHERE state <> 'delivered';
CREATE INDEX webhook_deliveries_unqueued ON webhook_deliveries (id) WHERE state = 'pending' AND queued = 0;
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE state = 'delivered';
