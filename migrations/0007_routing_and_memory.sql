-- Daily budgets sum today's traces: find them by time.
CREATE INDEX reply_traces_created ON reply_traces(created_at);

-- The rolling summary of a conversation's older turns (seed layer 3): refreshed when the
-- unsummarised history passes engine.summary_after_tokens; erased with the contact.
CREATE TABLE conversation_summaries (
    conversation_id     INTEGER PRIMARY KEY REFERENCES conversations(id),
    summary             TEXT NOT NULL,
    through_message_id  INTEGER NOT NULL,   -- messages up to this id are in the summary
    model               TEXT NOT NULL,
    updated_at          INTEGER NOT NULL
);
