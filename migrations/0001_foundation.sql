-- 0001: contacts, conversations, messages, delivery statuses, raw events.
-- Migrations are append-only: never edit an applied file, add a new one.

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    wa_id       TEXT,                 -- digits only; can be empty for username-only users
    user_id     TEXT,                 -- business-scoped user id (BSUID), when sent
    name        TEXT,
    username    TEXT,
    created_at  INTEGER NOT NULL,     -- Unix ms
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX contacts_wa_id ON contacts(wa_id) WHERE wa_id IS NOT NULL AND wa_id <> '';
CREATE UNIQUE INDEX contacts_user_id ON contacts(user_id) WHERE user_id IS NOT NULL AND user_id <> '';

CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    phone_number_id  TEXT NOT NULL,   -- the business number that received it
    contact_id       INTEGER NOT NULL REFERENCES contacts(id),
    owner            TEXT NOT NULL DEFAULT 'bot' CHECK (owner IN ('bot', 'human')),
    last_inbound_at  INTEGER,         -- Unix ms of the customer's last message (24 h window)
    last_message_at  INTEGER,
    created_at       INTEGER NOT NULL,
    UNIQUE (phone_number_id, contact_id)
);
CREATE INDEX conversations_recent ON conversations(last_message_at DESC);

CREATE TABLE messages (
    id               INTEGER PRIMARY KEY,
    wamid            TEXT NOT NULL UNIQUE,   -- WhatsApp message id: one row per message, ever
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    sender           TEXT NOT NULL,          -- customer wa_id, or the business number id
    kind             TEXT NOT NULL,          -- text, image, reaction, ...
    text             TEXT NOT NULL,          -- body, caption, title or readable summary
    body_json        TEXT NOT NULL,          -- the typed domain message
    context_wamid    TEXT,                   -- the message replied to
    status           TEXT NOT NULL,          -- received (in) / delivery state (out)
    wa_timestamp     INTEGER NOT NULL,       -- Unix seconds, from Meta
    created_at       INTEGER NOT NULL        -- Unix ms, stored
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);

-- Current delivery state per outbound wamid; only ever moves forward.
CREATE TABLE message_statuses (
    wamid          TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    callback_data  TEXT,
    error_code     INTEGER,
    error_title    TEXT,
    error_detail   TEXT,
    wa_timestamp   INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Every status callback as received (one row per wamid and state).
CREATE TABLE status_events (
    id            INTEGER PRIMARY KEY,
    wamid         TEXT NOT NULL,
    status        TEXT NOT NULL,
    wa_timestamp  INTEGER NOT NULL,
    applied       INTEGER NOT NULL,   -- 1 when it moved the current state
    body_json     TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    UNIQUE (wamid, status)
);

-- Deliveries or parts we could not understand or do not handle, kept for a person.
CREATE TABLE raw_events (
    id           INTEGER PRIMARY KEY,
    fingerprint  TEXT NOT NULL UNIQUE,  -- sha256 of reason + raw: re-runs insert nothing
    reason       TEXT NOT NULL,
    raw          TEXT NOT NULL,
    job_id       INTEGER,
    created_at   INTEGER NOT NULL
);

-- Proves the database is writable (/readyz).
CREATE TABLE heartbeat (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
);
