-- 0003: the knowledge base. Chunks are indexed twice: FTS5 (BM25) and, created at
-- runtime because its width depends on the embedding model, the vec0 table kb_vec.

CREATE TABLE kb_documents (
    id            TEXT PRIMARY KEY,     -- file path below the ingest root (no extension), or the given id
    title         TEXT NOT NULL,
    source        TEXT NOT NULL,        -- file path or URL
    content_hash  TEXT NOT NULL,        -- sha256 of title + text: unchanged content is a no-op
    added_at      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE kb_chunks (
    id       INTEGER PRIMARY KEY,
    doc_id   TEXT NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
    ord      INTEGER NOT NULL,
    section  TEXT NOT NULL,
    text     TEXT NOT NULL,
    tokens   INTEGER NOT NULL,
    UNIQUE (doc_id, ord)
);

-- rowid = kb_chunks.id. Porter stemming over unicode61 (diacritics folded).
CREATE VIRTUAL TABLE kb_fts USING fts5(title, section, text, tokenize = 'porter unicode61 remove_diacritics 2');

-- Which embedding model the vectors in kb_vec came from (key 'model', 'dim').
CREATE TABLE kb_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
