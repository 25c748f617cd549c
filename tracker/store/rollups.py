"""Reading upgrade operations: their rollups (counters, O(1) to read), the list of them by
latest activity, and their members."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import orjson

from tracker.domain.activity import MinuteActivity
from tracker.domain.device import DeviceTransition
from tracker.domain.notifications import (
    RESULTS,
    SUBTASK_STATUSES,
    TRACKS,
    UPGRADE_STATES,
    TaskStatus,
    Track,
)
from tracker.domain.operation import STATE_COUNTERS, ErrorCount, OperationCounts, OperationDevice
from tracker.domain.subtask import BUSY
from tracker.domain.task import Progress
from tracker.store import horizon, literals
from tracker.store.database import Database, Record
from tracker.store.errors import NotFound
from tracker.store.listing import Index, Listing
from tracker.store.queries import STORED_MEMBER_STATES, STORED_RESULTS, STUCK_WHERE, Key
from tracker.store.rows import DEVICE_TRANSITIONS, OPERATION_DEVICES, OPERATIONS

TOP_ERRORS = 20
# Where a rollout runs: an IoTDA batch task (its task_id is the operation's id, its subtasks
# its members, read through IoTDA's API), or an OceanConnect operation (pushed per device).
Platform = Literal["oceanconnect", "iotda"]
# The busy index's predicate, which a query must repeat for the planner to use it (generated
# from the one declaration, as STUCK_WHERE is: tests/integration/test_enum_predicates.py).
BUSY_WHERE = literals.one_of("state", BUSY)

OPERATIONS_BY_ACTIVITY = Listing(
    "operations",
    ("operation_id", "track"),
    ("last_activity_at", "operation_id", "track"),
    (
        Index("operations_by_activity", (), ("track",)),
        Index("operations_by_app", ("app_id",), ("track",)),
    ),
    values={"track": TRACKS},
    ids=frozenset({"operation_id"}),
    descending=True,
)
MEMBERS = Listing(
    "operation_devices",
    ("operation_id", "track", "device_id"),
    ("device_id", "track"),
    (
        Index("operation_devices_pkey", ("operation_id",), ("track",)),
        Index("operation_devices_by_state", ("operation_id",), ("track", "state", "result")),
        Index(
            "operation_devices_by_error",
            ("operation_id", "error_code"),
            ("track", "state", "result"),
        ),
    ),
    values={"track": TRACKS, "state": STORED_MEMBER_STATES, "result": STORED_RESULTS},
    ids=frozenset({"device_id"}),
)
# An IoTDA task's members stuck in a busy status (Waitting, Processing, FailWaitRetry) since
# before now - stuck_for, longest first: its busy range of the index that holds only those.
MEMBERS_STUCK = Listing(
    "operation_devices",
    ("operation_id", "track", "device_id"),
    ("state_since", "device_id", "track"),
    (Index("operation_devices_busy", ("operation_id",), ("track",), BUSY_WHERE),),
    values={"track": TRACKS},
    ids=frozenset({"device_id"}),
    conditions=("state_since < now() - make_interval(secs => :stuck_for)",),
)

# Each rollup row with its top errors, its target versions, and its IoTDA task if it is one
# (status, progress, when read): a few small key lookups each. A scalar subquery, never a
# join, so that the task is one lookup of its key per rollup whatever the planner thinks.
WITH_DETAILS = """
SELECT o.*,
    (SELECT json_build_array(t.status, t.progress, t.progress_at)
     FROM tasks t WHERE t.task_id = o.operation_id) AS task,
    (SELECT coalesce(json_agg(json_build_array(e.error_code, e.result_desc, e.devices)), '[]')
     FROM (SELECT * FROM operation_errors e
           WHERE e.operation_id = o.operation_id AND e.track = o.track
           ORDER BY e.devices DESC, e.error_code, e.result_desc LIMIT {top}) AS e) AS errors,
    (SELECT coalesce(json_object_agg(v.target_version, v.devices ORDER BY v.target_version), '{{}}')
     FROM operation_versions v
     WHERE v.operation_id = o.operation_id AND v.track = o.track) AS versions
FROM ({rows}) AS o
"""
ONE = "SELECT * FROM operations WHERE operation_id = $1"
IS_TASK = "SELECT EXISTS (SELECT FROM tasks WHERE task_id = $1)"
# Members stuck of each (operation, track): OceanConnect's as GET /v1/devices?stuck_for= lists
# them, a count over the stuck index's range for that operation; an IoTDA task's as its
# /devices?stuck_for= lists them, a count over its busy range. Never over the fleet.
STUCK = f"""
SELECT CASE WHEN k.iotda THEN
           (SELECT count(*) FROM operation_devices
            WHERE operation_id = k.operation_id AND track = k.track AND {BUSY_WHERE}
              AND state_since < now() - make_interval(secs => $4))
       ELSE
           (SELECT count(*) FROM device_tracks
            WHERE track = k.track AND operation_id = k.operation_id AND {STUCK_WHERE}
              AND state_since < now() - make_interval(secs => $4))
       END AS stuck
FROM unnest($1::text[], $2::text[], $3::boolean[]) WITH ORDINALITY AS k(operation_id, track, iotda, n)
ORDER BY k.n
"""  # noqa: S608, E501 - constants only


class NotIoTDA(Exception):  # noqa: N818 - reads as "not an IoTDA task"
    """What was asked of an operation only an IoTDA task's members have (`state_since`)."""


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What an IoTDA rollout's task says of itself: its status, and the platform's counters."""

    status: TaskStatus
    progress: Progress | None
    progress_at: datetime | None


@dataclass(frozen=True, slots=True)
class Rollup:
    """An operation on one track: its counters, its most common errors, its target versions,
    and, for an IoTDA task, what the task says."""

    counts: OperationCounts
    errors: list[ErrorCount]
    target_versions: dict[str, int]
    task: TaskFacts | None = None  # an IoTDA task's (there is a task by the operation's id)
    stuck: int | None = None  # asked for with a threshold (`with_stuck`)

    # What the document reads (documents.OperationDocument), besides the fields above.
    operation_id = property(lambda self: self.counts.operation_id)
    track = property(lambda self: self.counts.track)
    app_id = property(lambda self: self.counts.app_id)
    devices = property(lambda self: self.counts.devices)
    first_seen_at = property(lambda self: self.counts.first_seen_at)
    last_activity_at = property(lambda self: self.counts.last_activity_at)

    @property
    def platform(self) -> Platform:
        return "oceanconnect" if self.task is None else "iotda"

    @property
    def states(self) -> dict[str, int]:
        """Members by state, as the platform spells it; an IoTDA subtask's Success and Fail
        are its results (counted there for both platforms)."""
        counted = {s: getattr(self.counts, name) for s, name in STATE_COUNTERS.items()}
        if self.task is not None:
            counted |= {"Success": self.counts.success, "Fail": self.counts.fail}
        return {s: n for s in (*UPGRADE_STATES, *SUBTASK_STATUSES) if (n := counted.get(s))}

    @property
    def results(self) -> dict[str, int]:
        return {r: getattr(self.counts, r.lower()) for r in RESULTS}

    @property
    def task_status(self) -> TaskStatus | None:
        return None if self.task is None else self.task.status

    @property
    def task_progress(self) -> Progress | None:
        return None if self.task is None else self.task.progress

    @property
    def progress_at(self) -> datetime | None:
        return None if self.task is None else self.task.progress_at

    @property
    def members_progress(self) -> Progress:
        """The members' counts in the platform's terms (task_progress)."""
        c = self.counts
        return Progress(
            total=c.devices,
            processing=c.processing,
            success=c.success,
            fail=c.fail,
            waitting=c.waitting,
            fail_wait_retry=c.fail_wait_retry,
            stopped=c.stopped,
            removed=c.removed,
        )

    @property
    def progress_disagrees(self) -> bool | None:
        """Whether the platform's counters and the members' differ; None: nothing to compare."""
        progress = self.task_progress
        return None if progress is None else progress != self.members_progress


async def operation(db: Database, operation_id: str, track: Track | None = None) -> Rollup:
    """The rollup of `track`, by default the one with more devices (an operation has one)."""
    sql = WITH_DETAILS.format(top=TOP_ERRORS, rows=ONE)
    found = [_rollup(row) for row in await db.fetch("read operation", sql, operation_id)]
    if track is not None:
        found = [r for r in found if r.counts.track == track]
    if not found:
        on = f" on the {track} track" if track else ""
        raise NotFound(f"no device has reported operation {operation_id!r}{on}")
    # On a tie, the first track declared (notifications.TRACKS): software.
    return max(found, key=lambda r: (r.counts.devices, -TRACKS.index(r.counts.track)))


async def operations(
    db: Database, filters: dict[str, object], after: Key | None, limit: int
) -> tuple[list[Rollup], Key | None]:
    """Rollups, the most recently active first."""
    query = OPERATIONS_BY_ACTIVITY.query(frozenset(filters), resumed=after is not None)
    sql = WITH_DETAILS.format(top=TOP_ERRORS, rows=OPERATIONS_BY_ACTIVITY.rows(query))
    sql += ' ORDER BY o.last_activity_at DESC, o.operation_id COLLATE "C" DESC, o.track DESC'
    rows = await db.fetch("list operations", sql, *query.args(filters, after or (), limit))
    found = [_rollup(row) for row in rows]
    if len(found) < limit:
        return found, None
    last = found[-1].counts
    return found, (last.last_activity_at, last.operation_id, last.track)


async def with_stuck(db: Database, found: list[Rollup], stuck_for: float) -> list[Rollup]:
    """`found`, each with how many of its devices have been busy for longer than `stuck_for`
    seconds: OceanConnect's not idle with no result yet, IoTDA's in a busy subtask status."""
    if not found:
        return found
    ids, tracks = [r.operation_id for r in found], [r.track for r in found]
    iotda = [r.task is not None for r in found]
    rows = await db.fetch("count stuck", STUCK, ids, tracks, iotda, stuck_for)
    return [replace(r, stuck=row["stuck"]) for r, row in zip(found, rows, strict=True)]


def member_listing(filters: dict[str, object]) -> Listing:
    """Which listing answers these filters (and so which cursor shape it pages with)."""
    return MEMBERS_STUCK if "stuck_for" in filters else MEMBERS


async def members(
    db: Database, filters: dict[str, object], after: Key | None, limit: int
) -> tuple[list[OperationDevice], Key | None]:
    """An operation's members by device (`filters` has operation_id), with their state and last
    result in it; with `stuck_for` (an IoTDA task's alone), its busy ones, longest first."""
    operation_id = str(filters["operation_id"])
    listing = member_listing(filters)
    if listing is MEMBERS_STUCK and not await _is_task(db, operation_id):
        await operation(db, operation_id)  # NotFound, unless it was reported
        raise NotIoTDA(
            f"operation {operation_id!r} is not an IoTDA task: its stuck devices are "
            "GET /v1/devices?operation_id=&stuck_for="
        )
    query = listing.query(frozenset(filters), resumed=after is not None)
    sql = listing.rows(query)
    rows = await db.fetch("list members", sql, *query.args(filters, after or (), limit))
    found = [OPERATION_DEVICES.from_row(row) for row in rows]
    if not found and after is None:
        await operation(db, operation_id)  # NotFound, unless it was reported
    if len(found) < limit:
        return found, None
    last = found[-1]
    if listing is MEMBERS_STUCK:
        return found, (last.state_since, last.device_id, last.track)
    return found, (last.device_id, last.track)


async def _is_task(db: Database, operation_id: str) -> bool:
    row = await db.fetchrow("read task", IS_TASK, operation_id)
    return row is not None and bool(row[0])


def _rollup(row: Record) -> Rollup:
    counts = OPERATIONS.from_row(row)
    errors: list[Any] = orjson.loads(row["errors"])
    return Rollup(
        counts,
        [
            ErrorCount(counts.operation_id, counts.track, c or None, d or None, n)
            for c, d, n in errors
        ],
        orjson.loads(row["versions"]),
        None if row["task"] is None else _task_facts(orjson.loads(row["task"])),
    )


def _task_facts(task: list[Any]) -> TaskFacts:
    status, progress, progress_at = task
    return TaskFacts(
        status,
        None if progress is None else Progress(**progress),
        None if progress_at is None else datetime.fromisoformat(progress_at),
    )


# An operation's activity in buckets of `step` minutes, from its first minute: one row read per
# minute of its life, whatever its size.
ACTIVITY = """
SELECT $1::text AS operation_id, $2::text AS track,
       date_bin(make_interval(mins => $3), a.minute, first.minute) AS minute,
       sum(a.reports)::bigint AS reports, sum(a.invalid)::bigint AS invalid,
       sum(a.successes)::bigint AS successes, sum(a.failures)::bigint AS failures
FROM operation_activity a,
     (SELECT min(minute) AS minute FROM operation_activity
      WHERE operation_id = $1 AND track = $2) AS first
WHERE a.operation_id = $1 AND a.track = $2
GROUP BY 3 ORDER BY 3
"""
# An operation's invalid moves, oldest first (only they are in the index).
INVALID = """
SELECT * FROM device_transitions
WHERE operation_id = $1 AND track = $2 AND NOT valid AND position > $3 AND position <= $5
ORDER BY position LIMIT $4
"""


async def activity(
    db: Database, operation_id: str, track: Track, step_minutes: int
) -> list[MinuteActivity]:
    rows = await db.fetch("read activity", ACTIVITY, operation_id, track, step_minutes)
    return [MinuteActivity(*row.values()) for row in rows]


async def invalid_moves(
    db: Database, operation_id: str, track: Track, after: int, limit: int
) -> list[DeviceTransition]:
    last = await horizon.read(db)  # a cursor over many devices: stop where none can commit
    rows = await db.fetch("read invalid moves", INVALID, operation_id, track, after, limit, last)
    return [DEVICE_TRANSITIONS.from_row(row) for row in rows]
