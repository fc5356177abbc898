-- 0002: the send ledger. Every outbound message is a row before it is sent.

CREATE TABLE outbound (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    author           TEXT NOT NULL,            -- bot | agent:<name> | system
    kind             TEXT NOT NULL,            -- text | buttons | list | template | media
    body_json        TEXT NOT NULL,            -- the OutboundBody
    text             TEXT NOT NULL,            -- readable rendering
    reply_to         TEXT,                     -- wamid answered in context
    idempotency_key  TEXT NOT NULL UNIQUE,     -- the same request twice is one row
    state            TEXT NOT NULL DEFAULT 'queued',
    wamid            TEXT UNIQUE,              -- Meta's id once accepted
    attempts         INTEGER NOT NULL DEFAULT 0,
    error_code       INTEGER,
    error_reason     TEXT,                     -- human-readable, for the inbox
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    sending_at       INTEGER,                  -- when the last request to Meta started
    accepted_at      INTEGER
);
CREATE INDEX outbound_conversation ON outbound(conversation_id, id);
CREATE INDEX outbound_pending ON outbound(state) WHERE state IN ('queued', 'sending');

-- Set when a free-form send was refused for the 24-hour window; cleared by the next
-- inbound message.
ALTER TABLE conversations ADD COLUMN needs_template INTEGER NOT NULL DEFAULT 0;
