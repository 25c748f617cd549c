-- Dashboard sessions held by the server (issue: hardening of the session cookie).
-- A cookie names a row of `sessions` and carries an HMAC under `session_keys.secret`, a random
-- key that never leaves the database and is not derived from the read token: a stolen cookie
-- tells nothing about the token. Sign-out revokes the row; `tracker sessions revoke --all`
-- revokes every row and draws a new secret.

CREATE TABLE session_keys (
    only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    -- Signs cookies. Replaced by `tracker sessions revoke --all`.
    secret      bytea       NOT NULL CHECK (length(secret) >= 32),
    -- Salts the scrypt digest of the read token kept with each session, so that a changed
    -- TRACKER_READ_TOKEN ends every session. Never replaced: the digest of a token stays the
    -- same across rotations of the secret.
    token_salt  bytea       NOT NULL CHECK (length(token_salt) >= 16),
    rotated_at  timestamptz NOT NULL DEFAULT now()
);

-- Random bytes from PostgreSQL's strong random source (gen_random_uuid, built in since
-- PostgreSQL 13; a UUID holds 122 random bits): 48 bytes (366 random bits) of secret, 32 of
-- salt. Drawn here, by the owner, so the runtime role only ever reads this table.
INSERT INTO session_keys (secret, token_salt)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text
                      || gen_random_uuid()::text, '-', ''), 'hex'),
       decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');

CREATE TABLE sessions (
    id            text        PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    -- scrypt(read token, session_keys.token_salt): a session opened under another read token
    -- is not live for a server holding this one.
    token_digest  bytea       NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX sessions_ended ON sessions (expires_at);
-- What the runtime role may do with them: definitions/90_tracker_grant_runtime.sql.
