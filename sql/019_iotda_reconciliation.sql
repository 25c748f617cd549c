-- tracker: rebuild projections
-- IoTDA per-device truth (issue 24; tracker/iotda/ and tracker/domain/subtask.py). The
-- reconciler reads each upgrade task and its subtasks through IoTDA's API and appends what
-- changed as events of its own (`iotda.batchtask.observed`, `iotda.subtask.observed`), which
-- the projections fold like any delivery:
-- - `operation_devices`: an IoTDA task's members, their state a subtask status, and
--   `state_since` (how long a device has been busy: IoTDA's stuck);
-- - `operations`: counters of the subtask statuses that are not results;
-- - `device_transitions.kind` 'subtask': a device's subtask changes in its audit trail;
-- - `tasks.progress`, `progress_at`, `pushed`, `observed`: the platform's own counters, and
--   which statuses each source told (a status observed and never pushed is a lost push);
-- - `task_transitions.source`: push or reconciliation.
-- And the reconciler's own bookkeeping, which is not derived from the log: `iotda_sweeps`.
-- Every projection is rebuilt from the log by the reducers after this file (first line).

DROP TABLE IF EXISTS devices, device_tracks, sub_operations, device_transitions,
                     operation_devices, operations, operation_errors, operation_versions,
                     operation_activity, tasks, task_transitions;

-- Where the reconciler is with each task it reads, so that a restart resumes a sweep rather
-- than starting it again (tracker/iotda/sweeps.py).
CREATE TABLE iotda_sweeps (
    task_id        text        PRIMARY KEY,
    app_id         text,                   -- as the task was found under, if known
    task_type      text        NOT NULL,
    status         text        NOT NULL,   -- the task's status at its last read
    marker         text,                   -- the full sweep resumes after this detail
    swept          bigint      NOT NULL DEFAULT 0,  -- details read in the current sweep
    started_final  boolean     NOT NULL DEFAULT false,  -- the current sweep began after the end
    sweeps         bigint      NOT NULL DEFAULT 0,  -- full sweeps completed
    final_reads    integer     NOT NULL DEFAULT 0,  -- full reads since the task ended
    last_activity  timestamptz NOT NULL,   -- when a read last found a change
    next_at        timestamptz,            -- when it is due again; null: never (read in full
                                           -- after it ended, or gone)
    updated_at     timestamptz NOT NULL
);
CREATE INDEX iotda_sweeps_due ON iotda_sweeps (next_at);
