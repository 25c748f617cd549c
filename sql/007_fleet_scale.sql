-- tracker: rebuild projections
-- (The line above makes `tracker migrate` and `tracker serve` rebuild every projection from the
-- log right after applying this file: the tables below start empty, and only the reducers in
-- tracker/domain can fill them.)
--
-- Read models shaped for the reads they serve, so that every list page costs in proportion to
-- the page, not to the fleet (docs/scale.md has the figures):
-- - `devices`, one row per device: the unfiltered and per-application device lists.
-- - `device_tracks` gains `result` (the last result's outcome) and one index per family of
--   filters: each is (equalities..., state, result, order). A listing walks one index range per
--   (state, result) pair it does not filter on and merges them (tracker/store/listing.py), so
--   optional enumerations are stored as '' rather than NULL: `state IS NULL` is no equality to
--   the planner, and it would read such a range whole and sort it.
-- - `operation_devices` keeps each member's last result under the operation (for the rollup and
--   GET /v1/operations/{id}/devices).
-- - `operations`, `operation_errors`, `operation_versions`: the rollup counters, moved by deltas
--   in the append's transaction (tracker/domain/operation.py), recounted by replay.
-- - transitions gain an index by position, for the live feed.
--
-- Columns follow the domain's row types in order (tracker/store/rows.py derives its own view
-- of them from the same types; tests/integration/test_schema.py checks the two agree).
DROP TABLE device_tracks, device_transitions, operation_devices, tasks, task_transitions;
DROP FUNCTION tracker_create_projections(name);

-- The tables, with their keys only: replay fills them with COPY, then builds the other indexes.
-- `scratch`: UNLOGGED, for tables thrown away after use (`replay --check`): no WAL to write.
CREATE FUNCTION tracker_create_projections(target name, scratch boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE replace(format($ddl$
        CREATE TABLE %1$I.devices (
            device_id         text        NOT NULL PRIMARY KEY,
            app_id            text        NOT NULL,  -- as of the device's latest report
            first_seen_at     timestamptz NOT NULL
        );

        -- One row per device and track (software, firmware): the two machines are independent.
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
            PRIMARY KEY (device_id, track)
        );

        -- The audit trail: every change of state, with whether the machine allowed it.
        CREATE TABLE %1$I.device_transitions (
            device_id         text        NOT NULL,
            position          bigint      NOT NULL,
            track             text        NOT NULL,
            from_state        text,
            to_state          text        NOT NULL,
            valid             boolean     NOT NULL,
            operation_id      text        NOT NULL,
            sub_operation_id  text        NOT NULL,
            received_at       timestamptz NOT NULL,
            PRIMARY KEY (device_id, position)
        );

        -- Every device that took part in an operation, with its state and last result in it.
        CREATE TABLE %1$I.operation_devices (
            operation_id      text        NOT NULL,
            track             text        NOT NULL,
            device_id         text        NOT NULL,
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

        CREATE TABLE %1$I.tasks (
            task_id           text        PRIMARY KEY,
            app_id            text        NOT NULL,
            task_type         text        NOT NULL,
            status            text        NOT NULL,
            status_desc       text        NOT NULL,
            event_time        timestamptz NOT NULL,
            request_id        text,
            seen              jsonb       NOT NULL,  -- delivery keys folded in (retry detection)
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL
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

-- The indexes the reads walk (tracker/store/listing.py names the one each filter set uses), and
-- the planner statistics they need.
-- Built after a replay's bulk load, before its swap, so the swap itself only renames.
-- Ids sort as "C" (by code point) in every one of them, and the lists order by ids the same
-- way: no other index (a primary key, in the database's collation) can produce that order, so
-- the planner cannot trade a listing's range for a walk of the whole key with the filters
-- checked row by row, even in the generic plan it settles on for a statement reused.
CREATE FUNCTION tracker_projection_indexes(target name) RETURNS SETOF text
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
        -- Stuck devices, longest first: only tracks in a state other than idle are in these.
        ($s$CREATE INDEX device_tracks_stuck
            ON %1$I.device_tracks (track, state, result, state_since, device_id COLLATE "C")
            WHERE state IN ('downloading', 'downloaded', 'updating')$s$),
        ($s$CREATE INDEX device_tracks_stuck_by_operation
            ON %1$I.device_tracks (track, operation_id, state, result, state_since, device_id COLLATE "C")
            WHERE state IN ('downloading', 'downloaded', 'updating')$s$),
        ($s$CREATE INDEX device_tracks_stuck_by_app
            ON %1$I.device_tracks (track, app_id, state, result, state_since, device_id COLLATE "C")
            WHERE state IN ('downloading', 'downloaded', 'updating')$s$),
        -- The live feed, by position: all of it, or one operation's (one device's: its key).
        ($s$CREATE INDEX device_transitions_by_position
            ON %1$I.device_transitions (position)$s$),
        ($s$CREATE INDEX device_transitions_by_operation
            ON %1$I.device_transitions (operation_id, position)$s$),
        ($s$CREATE INDEX operation_devices_by_device
            ON %1$I.operation_devices (operation_id, track, device_id COLLATE "C")$s$),
        ($s$CREATE INDEX operation_devices_by_state
            ON %1$I.operation_devices (operation_id, track, state, result, device_id COLLATE "C")$s$),
        ($s$CREATE INDEX operation_devices_by_error
            ON %1$I.operation_devices (operation_id, error_code, track, state, result, device_id COLLATE "C")$s$),
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

CREATE FUNCTION tracker_index_projections(target name) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    statement text;
BEGIN
    FOR statement IN SELECT tracker_projection_indexes(target) LOOP
        EXECUTE statement;
    END LOOP;
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
    -- The log and the refusals: read and append, never rewrite.
    EXECUTE format('GRANT SELECT, INSERT ON events, rejected TO %I', grantee);
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
                   'bytea[], bytea[], smallint[], timestamptz[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
