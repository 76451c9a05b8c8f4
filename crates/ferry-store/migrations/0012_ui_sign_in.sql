-- Signing in to the web UI: a user's password (an Argon2id hash; NULL row = none set) and
-- the browser sessions, stored by the SHA-256 of their cookie like access tokens.
CREATE TABLE user_passwords (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    password_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE ui_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_id);
