-- Canned replies admins keep in the inbox (the config file's `[[inbox.canned_replies]]`
-- are shown beside them, read-only). Titles are unique, whatever their case.
CREATE TABLE canned_replies (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL COLLATE NOCASE UNIQUE,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL
);
