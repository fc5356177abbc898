-- The agent inbox: who a conversation is assigned to, private notes, read markers.
ALTER TABLE conversations ADD COLUMN assigned_to INTEGER REFERENCES users(id) ON DELETE SET NULL;

CREATE TABLE conversation_notes (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    author           TEXT NOT NULL,      -- the user's email
    text             TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes(conversation_id, id);
