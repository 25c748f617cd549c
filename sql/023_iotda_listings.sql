-- tracker: rebuild projections
-- The IoTDA reconciler's walk of each task list (tracker/iotda/reconciler.py, "Finding tasks").
--
-- - `iotda_listings`: where the reconciler is in its walk of ListBatchTasks for one (application,
--   task type), so that a walk cut short (a 5xx, a restart) resumes where it stopped instead of
--   leaving older tasks unfound, and when it last reached the end (the whole list is walked
--   again every ten minutes: a task long ended that is retried, whose push was lost, shows
--   there). Bookkeeping like `iotda_sweeps` (019): not derived from the log; losing it costs
--   requests, never truth.
-- - The projections are rebuilt (first line): an observed subtask's move is now valid when the
--   allowed moves can reach it (tracker/domain/subtask.py), since a read sees a device only
--   now and then, and a move it skipped through is not a device breaking the rules.
DROP TABLE IF EXISTS devices, device_tracks, sub_operations, device_transitions,
                     operation_devices, operations, operation_errors, operation_versions,
                     operation_activity, tasks, task_transitions, alerts, alert_transitions;

CREATE TABLE iotda_listings (
    app_id      text        NOT NULL,  -- '' : every application's tasks (no TRACKER_IOTDA_APP_IDS)
    task_type   text        NOT NULL,
    marker      text,                  -- the walk resumes after this task; null: from the top
    walked_at   timestamptz,           -- when a walk last reached the end; null: never yet
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, task_type)
);
