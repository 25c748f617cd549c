-- Projections: read models derived from the log by the reducers in tracker/domain.
--
-- Their DDL lives in one function so that `tracker replay` can build identical tables in a
-- scratch schema and swap them in, and `tracker replay --check` can build them to compare.
-- A later migration that changes a projection table must replace this function as well.
CREATE FUNCTION tracker_create_projections(target name) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($ddl$
        -- One row per device and track (software, firmware): the two machines are independent.
        CREATE TABLE %1$I.device_tracks (
            device_id         text        NOT NULL,
            track             text        NOT NULL CHECK (track IN ('software', 'firmware')),
            app_id            text        NOT NULL,
            state             text        CHECK (state IN ('idle', 'downloading', 'downloaded', 'updating')),
            state_since       timestamptz,
            operation_id      text        NOT NULL,
            sub_operation_id  text        NOT NULL,
            version           text,
            last_result       jsonb,
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            PRIMARY KEY (device_id, track)
        );
        CREATE INDEX device_tracks_by_state ON %1$I.device_tracks (track, state, device_id);
        CREATE INDEX device_tracks_by_operation ON %1$I.device_tracks (operation_id, device_id);
        CREATE INDEX device_tracks_by_app ON %1$I.device_tracks (app_id, device_id);

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

        CREATE TABLE %1$I.operation_devices (
            operation_id      text        NOT NULL,
            device_id         text        NOT NULL,
            track             text        NOT NULL,
            state             text,
            result            text,
            last_position     bigint      NOT NULL,
            updated_at        timestamptz NOT NULL,
            PRIMARY KEY (operation_id, device_id, track)
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
        CREATE INDEX tasks_by_status ON %1$I.tasks (status, task_id);
        CREATE INDEX tasks_by_app ON %1$I.tasks (app_id, task_id);

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
    $ddl$, target);
END
$fn$;

SELECT tracker_create_projections(current_schema());
