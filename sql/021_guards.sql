-- tracker: rebuild projections
-- Rollout guards and their alerts (issue 25; tracker/domain/guards.py, tracker/alerts/).
--
-- - An alert's changes are events of the tracker's own in the log, one stream per (guard,
--   rollout): `alert.changed` when it fires or resolves, `alert.stopped` with what a
--   StopBatchTask came to. So `stream_type` may now be 'alert'. The constraint is added NOT
--   VALID, then validated: a read of the log that blocks no append (as the rebuild below is).
-- - `alerts` (definitions/30_projections.sql) is folded from those events alone, and rebuilt
--   from the log like every projection (first line); `operations_busy` indexes the rollouts
--   that still have busy devices, which the guards' clock reads (stuck, silence).
-- - `guards`: the definitions, as the admin API wrote them. Configuration, not history: never
--   in the log, never touched by replay; the secrets stay in `webhook_secrets` (020).
-- - `guard_stops`: the StopBatchTask calls owed, written in the transaction that fires the
--   alert (as the outbox's rows are), so a crash between that commit and the call loses none.
ALTER TABLE events DROP CONSTRAINT events_stream_type_check;
ALTER TABLE events ADD CONSTRAINT events_stream_type_check
    CHECK (stream_type IN ('device', 'task', 'alert', 'unrecognised')) NOT VALID;
ALTER TABLE events VALIDATE CONSTRAINT events_stream_type_check;

DROP TABLE IF EXISTS devices, device_tracks, sub_operations, device_transitions,
                     operation_devices, operations, operation_errors, operation_versions,
                     operation_activity, tasks, task_transitions;

CREATE TABLE guards (
    -- As the API and the CLI take it (tracker/domain/guards.py): one bad name would stop every
    -- guard's alerts (an alert's events carry it, and refuse any other).
    name        text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    definition  jsonb       NOT NULL,  -- scope, when, the webhook's url, stop_task: no secret
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE guard_stops (
    id            text        PRIMARY KEY,  -- the firing's change id (alert.changed's `id`)
    guard         text        NOT NULL,
    operation_id  text        NOT NULL,     -- the IoTDA task to stop
    track         text        NOT NULL,
    number        integer     NOT NULL,     -- the firing's number in its alert
    created_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL,     -- due then; while a call is in flight, its lease
    state         text        NOT NULL CHECK (state IN ('pending', 'done')),
    done_at       timestamptz
);
CREATE INDEX guard_stops_due ON guard_stops (next_at) WHERE state = 'pending';
