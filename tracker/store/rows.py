"""The projection tables, each declared once: from its domain row type (tracker/domain), with
what the store adds to it (store/table.py derives the rest), and where the fold keeps its rows
(`PROJECTION_TABLES`). Live ingestion's load and write (projections.py), replay's fold, recount,
swap and check (rebuild.py, replay.py) and the export's table list all read it.

What a table adds to its row type:
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
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tracker.domain.activity import MinuteActivity
from tracker.domain.device import DeviceTransition, Kind, KnownDevice, TrackState, is_settled
from tracker.domain.guards import Alert, AlertTransition
from tracker.domain.notifications import RESULTS, Result
from tracker.domain.operation import (
    ERROR_DESC_KEY,
    STATE_COUNTERS,
    ErrorCount,
    OperationCounts,
    OperationDevice,
    VersionCount,
)
from tracker.domain.projection import Changes, Keys, Projection
from tracker.domain.suboperation import SubOperation
from tracker.domain.task import Task, TaskTransition
from tracker.store.literals import text
from tracker.store.table import Derived, Table

R = TypeVar("R", bound=tuple[Any, ...])


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
        # A counter per state and per result, named after it (as the recount below).
        **dict.fromkeys(STATE_COUNTERS.values(), "add"),
        **{result.lower(): "add" for result in RESULTS},
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
ALERTS: Table[Alert] = Table("alerts", Alert, key=("guard", "operation_id", "track"))
ALERT_TRANSITIONS: Table[AlertTransition] = Table(
    "alert_transitions",
    AlertTransition,
    key=("guard", "operation_id", "track", "number"),
    append_only=True,
)


# Replay's recounts of the rollups from the rebuilt members and audit trail ({s}: the schema):
# the definition the live deltas must agree with. Text minima compare as C (code points), as
# Python's min() does in the live path. A counter per state and per result, named after it.
_SUCCESS: Result = "SUCCESS"
_FAIL: Result = "FAIL"
_STATE: Kind = "state"
_RESULT: Kind = "result"
_SUBTASK: Kind = "subtask"
_BY_VALUE = [(name, f"state = {text(s)}") for s, name in STATE_COUNTERS.items()] + [
    (r.lower(), f"result = {text(r)}") for r in RESULTS
]
RECOUNT_OPERATIONS = f"""
INSERT INTO {{s}}.operations (operation_id, track, app_id, max_app_id, devices,
    {", ".join(name for name, _ in _BY_VALUE)}, first_seen_at, last_activity_at)
SELECT operation_id, track, min(app_id COLLATE "C"), max(app_id COLLATE "C"), count(*),
       {", ".join(f"count(*) FILTER (WHERE {where})" for _, where in _BY_VALUE)},
       min(first_seen_at), max(updated_at)
FROM {{s}}.operation_devices GROUP BY operation_id, track;
"""  # noqa: S608 - constants
RECOUNT_ERRORS = f"""
INSERT INTO {{s}}.operation_errors
SELECT operation_id, track, coalesce(error_code, ''),
       coalesce(left(result_desc, {ERROR_DESC_KEY}), ''), count(*)
FROM {{s}}.operation_devices WHERE result = {text(_FAIL)} GROUP BY 1, 2, 3, 4;
"""  # noqa: S608 - constants
RECOUNT_VERSIONS = """
INSERT INTO {s}.operation_versions
SELECT operation_id, track, target_version, count(*)
FROM {s}.operation_devices WHERE target_version IS NOT NULL GROUP BY 1, 2, 3;
"""
# A report: a state, or an IoTDA subtask's status that is not a result (domain/activity.py).
_REPORT = f"(kind = {text(_STATE)} OR (kind = {text(_SUBTASK)} AND result IS NULL))"
RECOUNT_ACTIVITY = f"""
INSERT INTO {{s}}.operation_activity
SELECT operation_id, track,
       date_trunc('minute', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       count(*) FILTER (WHERE {_REPORT}),
       count(*) FILTER (WHERE {_REPORT} AND NOT valid),
       count(*) FILTER (WHERE kind <> {text(_STATE)} AND result->>'result' = {text(_SUCCESS)}),
       count(*) FILTER (WHERE kind <> {text(_STATE)} AND result->>'result' = {text(_FAIL)})
FROM {{s}}.device_transitions GROUP BY 1, 2, 3;
"""  # noqa: S608 - constants


@dataclass(frozen=True, slots=True)
class Load:
    """How live ingestion loads the rows of a table that a batch may touch."""

    by: tuple[str, ...]  # key columns (text)
    keys: Callable[[Keys], Collection[Any]]  # the batch's values of them (tuples if several)


@dataclass(frozen=True, slots=True)
class ProjectionTable(Generic[R]):
    """A projection table, and where the fold (domain/projection.py) keeps its rows. What is
    given says what kind of table it is:
    - `held` (and `load`): rows by key that the fold reads: live ingestion loads those a batch
      may touch and writes those it changed; replay writes a stream's when the stream ends.
    - `trail`: rows the fold only appends (the audit trails): written as they come.
    - `recount`: counters over the others: live ingestion adds each batch's deltas (the
      table's `merge`); replay recounts them with this SQL from the rebuilt tables.
    """

    table: Table[R]
    changed: Callable[[Changes], Sequence[R]]  # what a batch changed, in the order to write
    held: Callable[[Projection], Iterable[R]] | None = None
    load: Load | None = None
    trail: Callable[[Projection], list[R]] | None = None  # emptied once written
    recount: str | None = None


def _subs(projection: Projection) -> Iterable[SubOperation]:
    return (sub for of_track in projection.subs.values() for sub in of_track.values())


# Not annotated as a whole, so that each entry's accessors are type-checked against its table's
# row type; in the order replay compares and reports them.
_DECLARED = (
    ProjectionTable(
        DEVICES,
        lambda c: c.devices,
        held=lambda p: p.devices.values(),
        load=Load(("device_id",), lambda k: k.devices),
    ),
    ProjectionTable(
        DEVICE_TRACKS,
        lambda c: c.tracks,
        held=lambda p: p.tracks.values(),
        load=Load(("device_id",), lambda k: k.devices),  # both tracks: the device's app
    ),
    ProjectionTable(
        SUB_OPERATIONS,
        lambda c: c.subs,
        held=_subs,
        # All of a device's: which one a track is in depends on all (domain/precedence.py).
        load=Load(("device_id",), lambda k: k.devices),
    ),
    ProjectionTable(
        DEVICE_TRANSITIONS, lambda c: c.device_transitions, trail=lambda p: p.device_transitions
    ),
    ProjectionTable(
        OPERATION_DEVICES,
        lambda c: c.members,
        held=lambda p: p.members.values(),
        load=Load(("operation_id", "track", "device_id"), lambda k: k.members),
    ),
    ProjectionTable(OPERATIONS, lambda c: c.rollup.count_deltas(), recount=RECOUNT_OPERATIONS),
    ProjectionTable(OPERATION_ERRORS, lambda c: c.rollup.error_deltas(), recount=RECOUNT_ERRORS),
    ProjectionTable(
        OPERATION_VERSIONS, lambda c: c.rollup.version_deltas(), recount=RECOUNT_VERSIONS
    ),
    ProjectionTable(OPERATION_ACTIVITY, lambda c: c.activity, recount=RECOUNT_ACTIVITY),
    ProjectionTable(
        TASKS,
        lambda c: c.tasks,
        held=lambda p: p.tasks.values(),
        load=Load(("task_id",), lambda k: k.tasks),
    ),
    ProjectionTable(
        TASK_TRANSITIONS, lambda c: c.task_transitions, trail=lambda p: p.task_transitions
    ),
    ProjectionTable(
        ALERTS,
        lambda c: c.alerts,
        held=lambda p: p.alerts.values(),
        load=Load(("guard", "operation_id", "track"), lambda k: k.alerts),
    ),
    ProjectionTable(
        ALERT_TRANSITIONS, lambda c: c.alert_transitions, trail=lambda p: p.alert_transitions
    ),
)
PROJECTION_TABLES: tuple[ProjectionTable[Any], ...] = _DECLARED
ALL_TABLES: tuple[Table[Any], ...] = tuple(p.table for p in PROJECTION_TABLES)
HELD = tuple(p for p in PROJECTION_TABLES if p.held is not None)
TRAILS = tuple(p for p in PROJECTION_TABLES if p.trail is not None)
ROLLUPS = tuple(p for p in PROJECTION_TABLES if p.recount is not None)
