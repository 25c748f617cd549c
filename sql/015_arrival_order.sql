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

-- The tables as they are now: definitions/30_projections.sql.

DROP TABLE IF EXISTS devices, device_tracks, device_transitions, operation_devices, operations,
                     operation_errors, operation_versions, operation_activity, tasks,
                     task_transitions;
