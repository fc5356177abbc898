-- Agents' triage: a priority per conversation (0 none, 1 low, 2 high, 3 urgent) and a
-- few short labels, both set in the inbox and filterable in the list.
ALTER TABLE conversations ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE TABLE conversation_labels (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    label           TEXT NOT NULL,
    PRIMARY KEY (conversation_id, label)
) WITHOUT ROWID;
CREATE INDEX conversation_labels_label ON conversation_labels(label, conversation_id);
