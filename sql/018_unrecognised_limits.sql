-- Unrecognised bodies get limits of their own (issue: "the log can be filled for ever by
-- anyone holding the ingest token"). A JSON object of no type we project is accepted and logged
-- whole; the platforms send few such (deviceDataChanged and the like, under 2 KiB), a flood
-- from a leaked callback URL sends many. Besides the size cap (TRACKER_UNRECOGNISED_MAX_BYTES,
-- checked before any database work), each ingest token may log at most
-- TRACKER_UNRECOGNISED_DAILY_BYTES of them a UTC day. The budget is kept here, not in a
-- process, so every worker and host shares it: one row per day and token (a digest of the
-- token that posted, or 'open' when no token is set), consumed by one INSERT ... ON CONFLICT
-- DO UPDATE ... WHERE bytes + n <= limit (tracker/store/budget.py), atomic under concurrency.
-- Recognised notifications never read or write it.
CREATE TABLE unrecognised_budget (
    day    date   NOT NULL,  -- UTC, by the database's clock
    token  text   NOT NULL,  -- the first 16 hex digits of sha256(token), or 'open'
    bytes  bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (day, token)
);

-- As in 016_trust_boundaries.sql, plus the budget.
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
    -- Unrecognised bodies' daily budget: consumed by every ingest of one (018).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON unrecognised_budget TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(text[], text[], text[], bytea[], '
                   'bytea[], smallint[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
