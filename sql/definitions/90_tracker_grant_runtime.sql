-- tracker: apply after any change
-- (The line above makes `migrate` apply this file whenever it applies any other definition or
-- migration: an object dropped and created again has lost its grants, a new table has none.)
--
-- Least privilege: the server can run as a role that may read and append to the log and
-- maintain the projections, and nothing more. `tracker migrate --runtime-role NAME` records the
-- role in `runtime_role` and grants it; `tracker replay` grants again after swapping in rebuilt
-- tables. Every grant the role holds is stated here, and nowhere else.
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
        'task_transitions, alerts, alert_transitions TO %I', grantee);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON operation_errors, operation_versions TO %I',
        grantee);
    -- What the server reads besides: the migrations and definitions applied (it checks them
    -- at every start), replay progress (for /metrics), the dictionaries bodies are compressed
    -- with.
    EXECUTE format('GRANT SELECT ON schema_migrations, schema_definitions, replay_progress, '
                   'runtime_role, body_codecs TO %I', grantee);
    -- Unrecognised bodies' daily budget: consumed by every ingest of one (018).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON unrecognised_budget TO %I', grantee);
    -- The IoTDA reconciler's place in each task it reads (019): its own, kept as it goes.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON iotda_sweeps TO %I', grantee);
    -- And its place in each walk of a task list (023).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON iotda_listings TO %I', grantee);
    -- What was pruned, for readers of the log: read only (pruning is the owner's).
    EXECUTE format('GRANT SELECT ON pruned_bodies TO %I', grantee);
    -- Dashboard sessions (017_sessions.sql): the keys are read, never written (only the owner
    -- rotates them); sessions are opened, revoked at sign-out and pruned when long ended.
    EXECUTE format('GRANT SELECT ON session_keys TO %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO %I', grantee);
    -- Webhooks (020_webhook_outbox.sql): alert changes are enqueued, then marked delivered or
    -- dead (rows are kept: no DELETE); the guards' secrets are written by the admin API.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON webhook_outbox TO %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_secrets TO %I', grantee);
    -- Guards (021_guards.sql): written by the admin API; the StopBatchTask calls they owe are
    -- written with the firing and marked done once made (rows are kept).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON guards TO %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON guard_stops TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(text[], text[], text[], bytea[], '
                   'bytea[], smallint[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
