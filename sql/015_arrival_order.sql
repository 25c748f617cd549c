-- tracker: rebuild projections
-- One truth whatever the arrival order (issue 20; tracker/domain/precedence.py and
-- suboperation.py). Device notifications carry no time, so a device track no longer follows the
-- order deliveries arrive in: it keeps each of its sub-operations as the set of what their
-- deliveries said (`sub_operations`), and shows the one the device is in now, read from what
-- they say. Every arrival order of the same deliveries gives the same tracks, members and
-- rollup counters.
-- - `sub_operations`: new, one row per device, track and sub-operation.
-- - `device_tracks.unapplied` goes: a sub-operation remembers what it has seen.
-- - `device_transitions.reason`: why a delivery was not applied (`stale`: its sub-operation
--   was past it; `earlier_operation`: the device is in another sub-operation now).
-- - `tasks.first_run_at` and `tasks.latest`: a task's status is ordered within its last second
--   by lifecycle, a retry's Processing after the failure it retries, whatever the order.
-- Every projection is rebuilt from the log by the reducers after this file (first line).

DROP TABLE devices, device_tracks, device_transitions, operation_devices, operations,
           operation_errors, operation_versions, operation_activity, tasks, task_transitions;

CREATE OR REPLACE FUNCTION tracker_create_projections(target name, scratch boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE replace(format($ddl$
        CREATE TABLE %1$I.devices (
            device_id         text        NOT NULL PRIMARY KEY,
            app_id            text        NOT NULL,  -- as of the device's latest report
            first_seen_at     timestamptz NOT NULL
        );

        -- One row per device and track (software, firmware): the two machines are independent.
        -- It shows the sub-operation the device is in now (tracker/domain/precedence.py).
        CREATE TABLE %1$I.device_tracks (
            device_id         text        NOT NULL,
            track             text        NOT NULL CHECK (track IN ('software', 'firmware')),
            app_id            text        NOT NULL,
            state             text        NOT NULL  -- '': none reported yet (a result came first)
                CHECK (state IN ('', 'idle', 'downloading', 'downloaded', 'updating')),
            state_since       timestamptz,
            operation_id      text        NOT NULL,
            sub_operation_id  text        NOT NULL,
            version           text,
            last_result       jsonb,
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            result            text        NOT NULL  -- derived: last_result's outcome, '' if none
                CHECK (result IN ('', 'SUCCESS', 'FAIL')),
            settled           boolean     NOT NULL, -- derived: the current sub-operation's result is in
            PRIMARY KEY (device_id, track)
        );

        -- Each sub-operation of each device track, as the set of what its deliveries said
        -- (tracker/domain/suboperation.py): read whole per device by every append that touches
        -- the device, to tell which one it is in now.
        CREATE TABLE %1$I.sub_operations (
            device_id         text        NOT NULL,
            track             text        NOT NULL CHECK (track IN ('software', 'firmware')),
            operation_id      text        NOT NULL,
            sub_operation_id  text        NOT NULL,
            app_id            text        NOT NULL,
            state             text                   -- the furthest reported; null: none yet
                CHECK (state IN ('idle', 'downloading', 'downloaded', 'updating')),
            state_since       timestamptz,
            result            jsonb,                 -- the result that counts
            seen              jsonb       NOT NULL,  -- states and results folded in
            first_seen_at     timestamptz NOT NULL,
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            -- derived: a digest of (operation_id, sub_operation_id); three ids of 256
            -- characters would not fit an index entry (tracker/store/rows.py)
            sub_key           text        NOT NULL,
            PRIMARY KEY (device_id, track, sub_key)
        );

        -- The audit trail: every change of state, with whether the machine allowed it and
        -- whether it was applied, and every result.
        CREATE TABLE %1$I.device_transitions (
            device_id         text        NOT NULL,
            position          bigint      NOT NULL,
            track             text        NOT NULL,
            from_state        text,
            to_state          text,                  -- a result before any state: null
            valid             boolean     NOT NULL,
            operation_id      text        NOT NULL,
            sub_operation_id  text        NOT NULL,
            received_at       timestamptz NOT NULL,
            kind              text        NOT NULL CHECK (kind IN ('state', 'result')),
            applied           boolean     NOT NULL,  -- false: see reason
            inconsistent      boolean     NOT NULL,  -- step and stepDesc disagreed
            result            jsonb,                 -- kind 'result': the result as reported
            reason            text                   -- why it was not applied
                CHECK (reason IN ('stale', 'earlier_operation')),
            PRIMARY KEY (device_id, position)
        );

        -- Every device that took part in an operation, with its state and last result in it.
        CREATE TABLE %1$I.operation_devices (
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            device_id         text        COLLATE "C" NOT NULL,  -- its key pages in code points
            app_id            text        NOT NULL,
            state             text        NOT NULL
                CHECK (state IN ('', 'idle', 'downloading', 'downloaded', 'updating')),
            result            text        NOT NULL CHECK (result IN ('', 'SUCCESS', 'FAIL')),
            error_code        text,
            result_desc       text,
            target_version    text,
            current_version   text,
            first_seen_at     timestamptz NOT NULL,
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            PRIMARY KEY (operation_id, track, device_id)
        );

        -- The rollup of each operation and track: counters over its members.
        CREATE TABLE %1$I.operations (
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            app_id            text        NOT NULL,  -- the least of its members' (code points)
            max_app_id        text        NOT NULL,  -- the greatest: equal unless it spans apps
            devices           bigint      NOT NULL,
            idle              bigint      NOT NULL,
            downloading       bigint      NOT NULL,
            downloaded        bigint      NOT NULL,
            updating          bigint      NOT NULL,
            success           bigint      NOT NULL,
            fail              bigint      NOT NULL,
            first_seen_at     timestamptz NOT NULL,
            last_activity_at  timestamptz NOT NULL,
            PRIMARY KEY (operation_id, track)
        );
        -- Members whose last result is FAIL, by error code and description ('' for none).
        CREATE TABLE %1$I.operation_errors (
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            error_code        text        NOT NULL,
            result_desc       text        NOT NULL,
            devices           bigint      NOT NULL,  -- > 0 after every commit (see DROP_EMPTY)
            PRIMARY KEY (operation_id, track, error_code, result_desc)
        );
        CREATE TABLE %1$I.operation_versions (
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            target_version    text        NOT NULL,
            devices           bigint      NOT NULL,  -- > 0 after every commit (see DROP_EMPTY)
            PRIMARY KEY (operation_id, track, target_version)
        );

        -- Each operation's activity, minute by minute (tracker/domain/activity.py).
        CREATE TABLE %1$I.operation_activity (
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            minute            timestamptz NOT NULL,  -- received_at, UTC, cut to the minute
            reports           bigint      NOT NULL,  -- state reports recorded
            invalid           bigint      NOT NULL,  -- of those, moves the machine does not make
            successes         bigint      NOT NULL,
            failures          bigint      NOT NULL,
            PRIMARY KEY (operation_id, track, minute)
        );

        CREATE TABLE %1$I.tasks (
            task_id           text        PRIMARY KEY,
            app_id            text        NOT NULL,
            task_type         text        NOT NULL,
            status            text        NOT NULL,
            status_desc       text,
            event_time        timestamptz NOT NULL,
            request_id        text,
            seen              jsonb       NOT NULL,  -- delivery keys folded in (retry detection)
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            event_time_precise boolean    NOT NULL,  -- false: the platform wrote it to the second
            first_run_at      timestamptz,           -- the earliest time it was Processing
            latest            jsonb       NOT NULL   -- the events of its last second
        );

        CREATE TABLE %1$I.task_transitions (
            task_id           text        NOT NULL,
            position          bigint      NOT NULL,
            from_status       text,
            to_status         text        NOT NULL,
            valid             boolean     NOT NULL,
            applied           boolean     NOT NULL,  -- false: arrived late, status not regressed
            event_time        timestamptz NOT NULL,
            request_id        text,
            received_at       timestamptz NOT NULL,
            PRIMARY KEY (task_id, position)
        );
    $ddl$, target), 'CREATE TABLE', CASE WHEN scratch THEN 'CREATE UNLOGGED TABLE'
                                         ELSE 'CREATE TABLE' END);
END
$fn$;

SELECT tracker_create_projections(current_schema());
SELECT tracker_index_projections(current_schema());

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
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(bigint, text[], text[], text[], '
                   'bytea[], bytea[], smallint[], timestamptz[], timestamptz[], bigint[]) TO %I',
                   grantee);
END
$fn$;
SELECT tracker_grant_runtime();
