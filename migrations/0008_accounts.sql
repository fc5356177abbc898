-- People who use the browser inbox: agents answer handoffs, admins also run the bot.
CREATE TABLE users (
    id                    INTEGER PRIMARY KEY,
    email                 TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role                  TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash         TEXT NOT NULL,          -- argon2id PHC string
    must_change_password  INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    password_changed_at   INTEGER NOT NULL
);

-- Browser sessions: only a hash of the cookie's token is stored.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
