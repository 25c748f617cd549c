-- tracker: rebuild projections
-- A membership is found by its whole key (issue 14, item 4). An append loads the memberships
-- its events touch by (operation, track, device), and two indexes began with (operation, track):
-- the key, and `operation_devices_by_device`, the same columns with the device in code-point
-- order, for paging an operation's devices. When the statistics call an operation small (a new
-- rollout, before ANALYZE has seen it grow), the planner found them equally cheap and could take
-- the second, matching (operation, track) and filtering on the device: a lookup then read every
-- member of the operation, a cost growing with the rollout (seen on the benchmark's fleet: 39
-- rows read per row found, 1.6 ms of each append's 6). The device now compares in code-point
-- order in the table itself, so the key serves both the lookup and the paging, and the second
-- index goes: one candidate, and one index less to write on every change of a membership.
-- Equality is the same in both orders (both are deterministic). Both are in
-- definitions/30_projections.sql. This version once changed the live column in place; the
-- projection tables are now replaced instead, and rebuilt from the log (first line).
DROP TABLE IF EXISTS devices, device_tracks, device_transitions, operation_devices, operations,
                     operation_errors, operation_versions, operation_activity, tasks,
                     task_transitions;
