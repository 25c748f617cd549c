-- tracker: rebuild projections
-- Each operation's activity, minute by minute (`operation_activity`: state reports, invalid
-- moves, results), kept with every delivery like the other rollups, so that the dashboard's
-- chart of a rollout's whole life reads one row per minute; and an index of each operation's
-- invalid moves (`device_transitions_invalid`), for the auditor's list. Both are in
-- definitions/30_projections.sql. This version once added them in place and counted the
-- activity from the audit trail; the projection tables are now replaced instead, and the
-- rebuild counts it (first line).
DROP TABLE IF EXISTS devices, device_tracks, device_transitions, operation_devices, operations,
                     operation_errors, operation_versions, tasks, task_transitions;
