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

CREATE OR REPLACE FUNCTION tracker_grant_runtime() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    grantee name := (SELECT role_name FROM runtime_role);
BEGIN
    IF grantee IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), grantee);
    -- It uses the schema; it never creates in it (see the top of 016_trust_boundaries.sql).
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', current_schema(), grantee);
    -- The log: read, and append only through tracker_append (which runs as its owner, under
    -- the append lock, with the hash chain); the refusals: read and append, never rewrite.
    EXECUTE format('GRANT SELECT ON events TO %I', grantee);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON events FROM %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT ON rejected TO %I', grantee);
    -- Read models, maintained inside the append's transaction (DELETE: rollup rows that fall to
    -- zero devices, which a recount would not have).
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE ON devices, device_tracks, sub_operations, '
        'device_transitions, operation_devices, operations, operation_activity, tasks, '
        'task_transitions TO %I', grantee);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON operation_errors, operation_versions TO %I',
        grantee);
    -- What the server reads besides: migrations applied, replay progress (for /metrics), the
    -- dictionaries bodies are compressed with.
    EXECUTE format('GRANT SELECT ON schema_migrations, replay_progress, runtime_role, '
                   'body_codecs TO %I', grantee);
    -- Dashboard sessions: the keys are read, never written (only the owner rotates them);
    -- sessions are opened (INSERT), revoked at sign-out (UPDATE) and pruned when long ended.
    EXECUTE format('GRANT SELECT ON session_keys TO %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(text[], text[], text[], bytea[], '
                   'bytea[], smallint[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
