-- 0004: the conversation engine's records: handoffs to a human, and one trace per reply.

-- A conversation handed to a human: why, how sure the bot was, what it had found.
CREATE TABLE handoffs (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    inbound_wamid    TEXT NOT NULL,          -- the customer message that triggered it
    trigger          TEXT NOT NULL,          -- asked_for_human, sensitive, low_confidence, no_knowledge, ...
    reason           TEXT NOT NULL,          -- plain words for the agent
    confidence       REAL,                   -- best retrieval similarity, when known
    summary          TEXT NOT NULL,          -- what the customer wants, for the inbox
    sources_json     TEXT NOT NULL DEFAULT '[]',
    cost_usd         REAL NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    resolved_at      INTEGER,                -- handed back to the bot
    resolved_by      TEXT,                   -- agent:<name>, cli:<user>, auto
    handback_note    TEXT                    -- what the bot should know when it resumes
);
CREATE UNIQUE INDEX handoffs_inbound ON handoffs(inbound_wamid);
CREATE INDEX handoffs_conversation ON handoffs(conversation_id, id);

-- What the engine did for one customer message: route, model, cost, timings, outcome.
CREATE TABLE reply_traces (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    inbound_wamid    TEXT NOT NULL UNIQUE,
    route            TEXT NOT NULL,          -- commodity, reasoning, offline, rule
    route_reason     TEXT NOT NULL,
    model            TEXT NOT NULL,
    tokens_in        INTEGER NOT NULL DEFAULT 0,
    tokens_out       INTEGER NOT NULL DEFAULT 0,
    cost_usd         REAL NOT NULL DEFAULT 0,
    confidence       REAL,
    outcome          TEXT NOT NULL,          -- answered, handoff
    guard            TEXT NOT NULL,          -- passed, blocked: ..., skipped
    retrieved_json   TEXT NOT NULL,          -- chunk ids with similarity
    attempts_json    TEXT NOT NULL DEFAULT '[]', -- each model tried, with its outcome
    stages_json      TEXT NOT NULL,          -- per-stage milliseconds
    created_at       INTEGER NOT NULL
);
CREATE INDEX reply_traces_conversation ON reply_traces(conversation_id, id);
