-- Least privilege: the server can run as a role that may read and append to the log and
-- maintain the projections, and nothing more. `tracker migrate --runtime-role NAME` records the
-- role here and grants it; `tracker replay` re-grants after swapping in rebuilt tables.
CREATE TABLE runtime_role (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    role_name name    NOT NULL
);

CREATE FUNCTION tracker_grant_runtime() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    grantee name := (SELECT role_name FROM runtime_role);
BEGIN
    IF grantee IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), grantee);
    -- The log and the refusals: read and append, never rewrite.
    EXECUTE format('GRANT SELECT, INSERT ON events, rejected TO %I', grantee);
    -- Read models, maintained by upserts inside the append's transaction.
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE ON device_tracks, device_transitions, operation_devices, '
        'tasks, task_transitions TO %I', grantee);
    -- What the server reads besides: migrations applied, replay progress (for /metrics).
    EXECUTE format('GRANT SELECT ON schema_migrations, replay_progress, runtime_role TO %I',
                   grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(bigint, text[], text[], text[], '
                   'text[], bytea[], timestamptz[], timestamptz[]) TO %I', grantee);
END
$fn$;
