"""The projection tables, each declared from its domain row type (tracker/domain), with what
the store adds to it and nothing else (store/table.py derives the rest):
- `blank`: optional values stored as '' (NOT NULL) instead of NULL. Listings walk indexes one
  value of such a column at a time, and to the planner `col IS NULL` is not an equality, so a
  NULL range would be read whole and sorted (store/listing.py).
- `derived`: NOT NULL columns computed from the row, for indexes and keys only (the last
  result's outcome of a device track; whether its current sub-operation's result is in; a
  sub-operation's key).
- `merge`: how a rollup's upsert folds a delta into the stored row.
The DDL itself stays in sql/ (`tracker_create_projections`), and tests/integration/test_schema.py
checks that the tables it creates have exactly these columns, types and nullability.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tracker.domain.activity import MinuteActivity
from tracker.domain.device import DeviceTransition, KnownDevice, TrackState, is_settled
from tracker.domain.operation import ErrorCount, OperationCounts, OperationDevice, VersionCount
from tracker.domain.suboperation import SubOperation
from tracker.domain.task import Task, TaskTransition
from tracker.store.table import Derived, Table


def _last_result(track: TrackState) -> str:
    return track.last_result.result if track.last_result else ""


DEVICES: Table[KnownDevice] = Table("devices", KnownDevice, key=("device_id",))
DEVICE_TRACKS: Table[TrackState] = Table(
    "device_tracks",
    TrackState,
    key=("device_id", "track"),
    blank=frozenset({"state"}),
    derived=(Derived("result", _last_result), Derived("settled", is_settled, "boolean")),
)


def _sub_key(sub: SubOperation) -> str:
    """The key of a sub-operation within its device track: its two ids, digested. Three ids of
    up to 256 characters would not fit an index entry (2,704 bytes), and the device's id leads
    the key so an append reads all of a device's sub-operations from one range."""
    ids = f"{sub.operation_id}\x00{sub.sub_operation_id}".encode()
    return hashlib.blake2b(ids, digest_size=16).hexdigest()


SUB_OPERATIONS: Table[SubOperation] = Table(
    "sub_operations",
    SubOperation,
    key=("device_id", "track", "sub_key"),
    derived=(Derived("sub_key", _sub_key),),
)
DEVICE_TRANSITIONS: Table[DeviceTransition] = Table(
    "device_transitions", DeviceTransition, key=("device_id", "position"), append_only=True
)
OPERATION_DEVICES: Table[OperationDevice] = Table(
    "operation_devices",
    OperationDevice,
    key=("operation_id", "track", "device_id"),
    blank=frozenset({"state", "result"}),
)
OPERATIONS: Table[OperationCounts] = Table(
    "operations",
    OperationCounts,
    key=("operation_id", "track"),
    merge={
        "app_id": "least",
        "max_app_id": "greatest",
        "devices": "add",
        "idle": "add",
        "downloading": "add",
        "downloaded": "add",
        "updating": "add",
        "success": "add",
        "fail": "add",
        "first_seen_at": "least",
        "last_activity_at": "greatest",
    },
)
OPERATION_ERRORS: Table[ErrorCount] = Table(
    "operation_errors",
    ErrorCount,
    key=("operation_id", "track", "error_code", "result_desc"),
    blank=frozenset({"error_code", "result_desc"}),
    merge={"devices": "add"},
)
OPERATION_VERSIONS: Table[VersionCount] = Table(
    "operation_versions",
    VersionCount,
    key=("operation_id", "track", "target_version"),
    merge={"devices": "add"},
)
OPERATION_ACTIVITY: Table[MinuteActivity] = Table(
    "operation_activity",
    MinuteActivity,
    key=("operation_id", "track", "minute"),
    merge={"reports": "add", "invalid": "add", "successes": "add", "failures": "add"},
)
TASKS: Table[Task] = Table("tasks", Task, key=("task_id",))
TASK_TRANSITIONS: Table[TaskTransition] = Table(
    "task_transitions", TaskTransition, key=("task_id", "position"), append_only=True
)

ALL_TABLES: tuple[Table[Any], ...] = (
    DEVICES,
    DEVICE_TRACKS,
    SUB_OPERATIONS,
    DEVICE_TRANSITIONS,
    OPERATION_DEVICES,
    OPERATIONS,
    OPERATION_ERRORS,
    OPERATION_VERSIONS,
    OPERATION_ACTIVITY,
    TASKS,
    TASK_TRANSITIONS,
)
