-- Inbound media: one row per media message, from download to the text the bot reads
-- (a transcript, an image description, a document's text). Files live in
-- data_dir/media/ named by their SHA-256 (content-addressed; shared by identical files).
CREATE TABLE media (
    id            INTEGER PRIMARY KEY,
    wamid         TEXT NOT NULL UNIQUE,     -- the message carrying it
    conversation_id INTEGER NOT NULL,
    media_type    TEXT NOT NULL,            -- image | audio | video | document
    media_id      TEXT NOT NULL,            -- Graph API media id (valid about 7 days)
    declared_mime TEXT,                     -- what the webhook said
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'done', 'failed')),
    sha256        TEXT,                     -- hex; the stored file's name
    mime_type     TEXT,                     -- checked against the bytes
    size_bytes    INTEGER,
    derived_kind  TEXT,                     -- transcript | description | document_text
    derived_text  TEXT,
    language      TEXT,                     -- from the transcription service
    error         TEXT,                     -- why it failed (for agents and logs)
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX media_conversation ON media(conversation_id);
CREATE INDEX media_sha ON media(sha256) WHERE sha256 IS NOT NULL;
