-- Appends only through the append function (issue 12, item 5): `tracker_append` runs with its
-- owner's rights (SECURITY DEFINER) and a fixed search_path (this schema, then pg_temp, so no
-- object of the caller's can stand in for ours), and only the runtime role may call it. The
-- runtime role itself may no longer INSERT into `events`: every event goes through the append
-- lock and the hash chain, whoever wrote the client.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION tracker_append(bigint, text[], text[], text[], bytea[], bytea[], smallint[], timestamptz[], timestamptz[], bigint[]) SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema());
END
$$;
REVOKE EXECUTE ON FUNCTION tracker_append(bigint, text[], text[], text[], bytea[], bytea[], smallint[], timestamptz[], timestamptz[], bigint[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION tracker_grant_runtime() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    grantee name := (SELECT role_name FROM runtime_role);
BEGIN
    IF grantee IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), grantee);
    -- The log: read, and append only through tracker_append (which runs as its owner, under
    -- the append lock, with the hash chain); the refusals: read and append, never rewrite.
    EXECUTE format('GRANT SELECT ON events TO %I', grantee);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON events FROM %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT ON rejected TO %I', grantee);
    -- Read models, maintained inside the append's transaction (DELETE: rollup rows that fall to
    -- zero devices, which a recount would not have).
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE ON devices, device_tracks, device_transitions, '
        'operation_devices, operations, tasks, task_transitions TO %I', grantee);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON operation_errors, operation_versions TO %I',
        grantee);
    -- What the server reads besides: migrations applied, replay progress (for /metrics), the
    -- dictionaries bodies are compressed with.
    EXECUTE format('GRANT SELECT ON schema_migrations, replay_progress, runtime_role, '
                   'body_codecs TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(bigint, text[], text[], text[], '
                   'bytea[], bytea[], smallint[], timestamptz[], timestamptz[], bigint[]) TO %I',
                   grantee);
END
$fn$;
SELECT tracker_grant_runtime();
