-- Projections: read models derived from the log by the reducers in tracker/domain, and rebuilt
-- from it by `tracker replay`. Their DDL lives in functions, so that replay can build identical
-- tables in a scratch schema and swap them in, and `tracker replay --check` can build them to
-- compare. Columns follow the domain's row types in order (tracker/store/rows.py derives its own
-- view of them from the same types; tests/integration/test_schema.py checks that the two agree,
-- and that the live tables and a scratch build have the same indexes and collations).
--
-- The live tables are created at the end of this file whenever they are absent: on a fresh
-- database, and after a numbered migration that replaced them. Such a migration starts with
-- `-- tracker: rebuild projections` and drops every projection table; `migrate` then applies
-- the definitions (this file creates the tables as they are now, empty) and rebuilds them from
-- the log. Changing a table or an index here therefore takes such a migration as well:
-- without one, the live tables keep their old shape until the next `tracker replay`.

DROP FUNCTION IF EXISTS tracker_create_projections(name);  -- its signature before 007

-- The tables, with their keys only: replay fills them with COPY, then builds the other indexes.
-- `scratch`: UNLOGGED, for tables thrown away after use (`replay --check`): no WAL to write.
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
            kind              text        NOT NULL  -- subtask: IoTDA's, observed (its statuses)
                CHECK (kind IN ('state', 'result', 'subtask')),
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
            state             text        NOT NULL  -- OceanConnect's state, or IoTDA's subtask status
                CHECK (state IN ('', 'idle', 'downloading', 'downloaded', 'updating', 'Waitting',
                                 'Processing', 'Success', 'Fail', 'FailWaitRetry', 'Stopped',
                                 'Removed')),
            result            text        NOT NULL CHECK (result IN ('', 'SUCCESS', 'FAIL')),
            error_code        text,
            result_desc       text,
            target_version    text,
            current_version   text,
            first_seen_at     timestamptz NOT NULL,
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            state_since       timestamptz,           -- IoTDA: when it entered its status
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
            -- IoTDA's subtask statuses (its Success and Fail are the results above)
            waitting          bigint      NOT NULL DEFAULT 0,
            processing        bigint      NOT NULL DEFAULT 0,
            fail_wait_retry   bigint      NOT NULL DEFAULT 0,
            stopped           bigint      NOT NULL DEFAULT 0,
            removed           bigint      NOT NULL DEFAULT 0,
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
            latest            jsonb       NOT NULL,  -- the events of its last second
            progress          jsonb,                 -- the platform's task_progress, as read
            progress_at       timestamptz,           -- ... when
            pushed            jsonb       NOT NULL DEFAULT '[]',  -- statuses a push told
            observed          jsonb       NOT NULL DEFAULT '[]'   -- statuses the reconciler saw
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
            source            text        NOT NULL DEFAULT 'push'
                CHECK (source IN ('push', 'reconciliation')),
            PRIMARY KEY (task_id, position)
        );

        -- One (guard, rollout), folded from its alert.changed and alert.stopped events.
        CREATE TABLE %1$I.alerts (
            guard             text        NOT NULL,
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            app_id            text        NOT NULL,
            platform          text        NOT NULL,
            state             text        NOT NULL CHECK (state IN ('firing', 'resolved')),
            value             double precision NOT NULL,  -- the reading at the last change
            threshold         double precision NOT NULL,
            fired_at          timestamptz NOT NULL,
            resolved_at       timestamptz,
            new_codes         jsonb       NOT NULL,  -- new_error_code: the codes it fired for
            known_codes       jsonb       NOT NULL,  -- ...and those not counted as new
            changes           bigint      NOT NULL,  -- its changes so far (ids end with it)
            stop              jsonb,                 -- StopBatchTask's outcome for this firing
            PRIMARY KEY (guard, operation_id, track)
        );

        -- Every change of every alert, at its event's position (its history; the live feed).
        CREATE TABLE %1$I.alert_transitions (
            position          bigint      NOT NULL,
            guard             text        NOT NULL,
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            app_id            text        NOT NULL,
            number            bigint      NOT NULL,
            state             text        NOT NULL CHECK (state IN ('firing', 'resolved')),
            value             double precision NOT NULL,
            threshold         double precision NOT NULL,
            at                timestamptz NOT NULL,
            received_at       timestamptz NOT NULL,
            PRIMARY KEY (guard, operation_id, track, number)
        );
    $ddl$, target), 'CREATE TABLE', CASE WHEN scratch THEN 'CREATE UNLOGGED TABLE'
                                         ELSE 'CREATE TABLE' END);
END
$fn$;

-- The indexes the reads walk (tracker/store/listing.py names the one each filter set uses), and
-- the planner statistics they need.
-- Built after a replay's bulk load, before its swap, so the swap itself only renames.
-- Ids sort as "C" (by code point) in every one of them, and the lists order by ids the same
-- way: no other index (a primary key, in the database's collation) can produce that order, so
-- the planner cannot trade a listing's range for a walk of the whole key with the filters
-- checked row by row, even in the generic plan it settles on for a statement reused.
CREATE OR REPLACE FUNCTION tracker_projection_indexes(target name) RETURNS SETOF text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT format(statement, target) FROM (VALUES
        ($s$CREATE INDEX devices_by_id
            ON %1$I.devices (device_id COLLATE "C")$s$),
        ($s$CREATE INDEX devices_by_app
            ON %1$I.devices (app_id, device_id COLLATE "C")$s$),
        ($s$CREATE INDEX device_tracks_by_state
            ON %1$I.device_tracks (track, state, result, device_id COLLATE "C")$s$),
        ($s$CREATE INDEX device_tracks_by_operation
            ON %1$I.device_tracks (track, operation_id, state, result, device_id COLLATE "C")$s$),
        ($s$CREATE INDEX device_tracks_by_app
            ON %1$I.device_tracks (track, app_id, state, result, device_id COLLATE "C")$s$),
        -- Stuck devices, longest first: only tracks in a state other than idle, still waiting
        -- for their sub-operation's result, are in these.
        ($s$CREATE INDEX device_tracks_stuck
            ON %1$I.device_tracks (track, state, result, state_since, device_id COLLATE "C")
            WHERE state IN ('downloading', 'downloaded', 'updating') AND NOT settled$s$),
        ($s$CREATE INDEX device_tracks_stuck_by_operation
            ON %1$I.device_tracks (track, operation_id, state, result, state_since, device_id COLLATE "C")
            WHERE state IN ('downloading', 'downloaded', 'updating') AND NOT settled$s$),
        ($s$CREATE INDEX device_tracks_stuck_by_app
            ON %1$I.device_tracks (track, app_id, state, result, state_since, device_id COLLATE "C")
            WHERE state IN ('downloading', 'downloaded', 'updating') AND NOT settled$s$),
        -- The live feed, by position: all of it, or one operation's (one device's: its key).
        ($s$CREATE INDEX device_transitions_by_position
            ON %1$I.device_transitions (position)$s$),
        ($s$CREATE INDEX device_transitions_by_operation
            ON %1$I.device_transitions (operation_id, position)$s$),
        -- An operation's invalid moves, for the auditor: only those are in it.
        ($s$CREATE INDEX device_transitions_invalid
            ON %1$I.device_transitions (operation_id, track, position) WHERE NOT valid$s$),
        ($s$CREATE INDEX operation_devices_by_state
            ON %1$I.operation_devices (operation_id, track, state, result, device_id COLLATE "C")$s$),
        ($s$CREATE INDEX operation_devices_by_error
            ON %1$I.operation_devices (operation_id, error_code, track, state, result, device_id COLLATE "C")$s$),
        -- A device's IoTDA tasks, latest first (its document), and a task's busy devices by
        -- how long they have been in their status (IoTDA's stuck): only those are in these.
        ($s$CREATE INDEX operation_devices_by_device
            ON %1$I.operation_devices (device_id COLLATE "C", updated_at) WHERE state_since IS NOT NULL$s$),
        ($s$CREATE INDEX operation_devices_busy
            ON %1$I.operation_devices (operation_id, track, state_since, device_id COLLATE "C")
            WHERE state IN ('Waitting', 'Processing', 'FailWaitRetry')$s$),
        ($s$CREATE INDEX operations_by_activity
            ON %1$I.operations (track, last_activity_at, operation_id COLLATE "C")$s$),
        ($s$CREATE INDEX operations_by_app
            ON %1$I.operations (app_id, track, last_activity_at, operation_id COLLATE "C")$s$),
        ($s$CREATE INDEX tasks_by_id
            ON %1$I.tasks (task_id COLLATE "C")$s$),
        ($s$CREATE INDEX tasks_by_status
            ON %1$I.tasks (status, task_type, task_id COLLATE "C")$s$),
        ($s$CREATE INDEX tasks_by_app
            ON %1$I.tasks (app_id, status, task_type, task_id COLLATE "C")$s$),
        -- Rollouts with devices still busy, which the guards' clock reads (stuck, silence).
        ($s$CREATE INDEX operations_busy
            ON %1$I.operations (last_activity_at, operation_id COLLATE "C", track)
            WHERE downloading + downloaded + updating + waitting + processing
                  + fail_wait_retry > 0$s$),
        -- Alerts, latest first: all, by state, or a rollout's.
        ($s$CREATE INDEX alerts_by_time
            ON %1$I.alerts (fired_at, guard, operation_id COLLATE "C", track)$s$),
        ($s$CREATE INDEX alerts_by_state
            ON %1$I.alerts (state, fired_at, guard, operation_id COLLATE "C", track)$s$),
        ($s$CREATE INDEX alerts_by_operation
            ON %1$I.alerts (operation_id, fired_at, guard, track)$s$),
        ($s$CREATE INDEX alert_transitions_by_position
            ON %1$I.alert_transitions (position)$s$),
        ($s$CREATE INDEX alert_transitions_by_operation
            ON %1$I.alert_transitions (operation_id, position)$s$),
        ($s$CREATE INDEX task_transitions_by_position
            ON %1$I.task_transitions (position)$s$),
        -- How often values occur together: a device still downloading has no result yet, and
        -- multiplying the two columns' own frequencies would call that pair rare, and plan a
        -- listing's branch as a sort of "a few rows" that are in fact thousands.
        ($s$CREATE STATISTICS %1$I.device_tracks_states (mcv)
            ON track, state, result FROM %1$I.device_tracks$s$),
        ($s$CREATE STATISTICS %1$I.device_tracks_operation_states (mcv)
            ON track, operation_id, state, result FROM %1$I.device_tracks$s$),
        ($s$CREATE STATISTICS %1$I.operation_devices_states (mcv)
            ON operation_id, track, state, result FROM %1$I.operation_devices$s$),
        ($s$CREATE STATISTICS %1$I.tasks_statuses (mcv)
            ON status, task_type FROM %1$I.tasks$s$)
    ) AS indexes(statement)
$fn$;

CREATE OR REPLACE FUNCTION tracker_index_projections(target name)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    statement text;
BEGIN
    FOR statement IN SELECT tracker_projection_indexes(target) LOOP
        EXECUTE statement;
    END LOOP;
END
$fn$;

-- The live tables, in this schema, whenever they are absent (see the top of this file).
DO $$
BEGIN
    IF to_regclass(format('%I.devices', current_schema())) IS NULL THEN
        PERFORM tracker_create_projections(current_schema());
        PERFORM tracker_index_projections(current_schema());
    END IF;
END
$$;
