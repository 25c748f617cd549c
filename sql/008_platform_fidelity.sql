-- tracker: rebuild projections
-- Platform fidelity (the machines as the platforms run them, tolerant descriptive fields,
-- results in the audit trail, readmission of refused deliveries):
-- - `events.readmitted_from`: the `rejected` row a readmitted event came from (`tracker
--   readmit`); unique, so a delivery is readmitted once whatever runs at the same time. Its
--   `received_at` is the original one.
-- - `device_transitions` holds results too (`kind`), late re-pushes (`applied`), reports whose
--   step and stepDesc disagree (`inconsistent`).
-- - `device_tracks.settled`: the current sub-operation's result has arrived; such a device is
--   not stuck, and the stuck indexes leave it out. `device_tracks.unapplied`: the state of the
--   last report not applied, so that the platform's retry of a late re-push records nothing.
-- - `tasks.status_desc` may be null; `tasks.event_time_precise` says whether the platform wrote
--   the time to the millisecond (tracker/domain/task.py compares such times to the second).
-- Every projection is rebuilt from the log by the reducers after this file (first line).
ALTER TABLE events ADD COLUMN readmitted_from bigint;
CREATE UNIQUE INDEX events_readmitted_from ON events (readmitted_from)
    WHERE readmitted_from IS NOT NULL;

DROP TABLE IF EXISTS devices, device_tracks, device_transitions, operation_devices, operations,
                     operation_errors, operation_versions, tasks, task_transitions;
-- The append records where a readmitted event came from (definitions/12_tracker_append_kept.sql).
