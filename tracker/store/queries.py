"""Reading the projections: plain SQL, keyset-paginated, returning domain objects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

from tracker.domain.delivery import decode
from tracker.domain.device import DeviceTransition, TrackState
from tracker.domain.notifications import Track
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.domain.task import Task, TaskTransition
from tracker.store.database import Database
from tracker.store.rows import DEVICE_TRACKS, DEVICE_TRANSITIONS, TASK_TRANSITIONS, TASKS

DEVICE = "SELECT * FROM device_tracks WHERE device_id = $1 ORDER BY track"

DEVICE_PAGE = """
WITH page AS (
    SELECT DISTINCT device_id FROM device_tracks
    WHERE ($1::text IS NULL OR track = $1)
      AND ($2::text IS NULL OR state = $2)
      AND ($3::text IS NULL OR app_id = $3)
      AND ($4::text IS NULL OR operation_id = $4)
      AND ($7::text IS NULL OR last_result->>'result' = $7)
      AND ($8::float8 IS NULL
           OR (state <> 'idle' AND state_since < now() - make_interval(secs => $8)))
      AND device_id > $5
    ORDER BY device_id LIMIT $6
)
SELECT t.* FROM device_tracks t JOIN page USING (device_id) ORDER BY t.device_id, t.track
"""

DEVICE_HISTORY_BY_POSITION = """
SELECT position, received_at, raw FROM events
WHERE stream_type = 'device' AND stream_id = $1 AND position <= $2 ORDER BY position
"""
DEVICE_HISTORY_BY_TIME = """
SELECT position, received_at, raw FROM events
WHERE stream_type = 'device' AND stream_id = $1 AND received_at <= $2 ORDER BY position
"""

DEVICE_TRANSITIONS_PAGE = """
SELECT * FROM device_transitions WHERE device_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""

OPERATION = """
SELECT track, state, result, count(*) AS devices FROM operation_devices
WHERE operation_id = $1 GROUP BY track, state, result
"""

TASK = "SELECT * FROM tasks WHERE task_id = $1"

TASK_PAGE = """
SELECT * FROM tasks
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR task_type = $2)
  AND ($3::text IS NULL OR app_id = $3)
  AND task_id > $4
ORDER BY task_id LIMIT $5
"""

TASK_TRANSITIONS_PAGE = """
SELECT * FROM task_transitions WHERE task_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    tracks: dict[Track, TrackState]


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    track: Track | None = None
    state: str | None = None
    app_id: str | None = None
    operation_id: str | None = None
    result: str | None = None  # the track's last result: SUCCESS or FAIL
    stuck_for: float | None = None  # seconds in a state other than idle, at least


@dataclass(frozen=True, slots=True)
class OperationSummary:
    operation_id: str
    track: Track
    devices: int
    states: dict[str, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    task_type: str | None = None
    app_id: str | None = None


async def device(db: Database, device_id: str) -> Device | None:
    rows = await db.fetch("read device", DEVICE, device_id)
    if not rows:
        return None
    return Device(device_id, {row["track"]: DEVICE_TRACKS.from_row(row) for row in rows})


async def devices(db: Database, where: DeviceFilter, after: str, limit: int) -> list[Device]:
    rows = await db.fetch(
        "list devices",
        DEVICE_PAGE,
        where.track,
        where.state,
        where.app_id,
        where.operation_id,
        after,
        limit,
        where.result,
        where.stuck_for,
    )
    return [
        Device(device_id, {row["track"]: DEVICE_TRACKS.from_row(row) for row in group})
        for device_id, group in groupby(rows, key=lambda row: row["device_id"])
    ]


async def device_at(db: Database, device_id: str, moment: int | datetime) -> Device | None:
    """The device as it was at a log position (inclusive) or a time, folded from the log."""
    by_position = isinstance(moment, int)
    rows = await db.fetch(
        "read device history",
        DEVICE_HISTORY_BY_POSITION if by_position else DEVICE_HISTORY_BY_TIME,
        device_id,
        moment,
    )
    projection = Projection()
    for row in rows:
        notification = decode(bytes(row["raw"])).notification
        if notification is not None:
            projection.apply(Recorded(row["position"], row["received_at"], notification))
    if not projection.tracks:
        return None
    return Device(device_id, {track: state for (_, track), state in projection.tracks.items()})


async def device_transitions(
    db: Database, device_id: str, after: int, limit: int
) -> list[DeviceTransition]:
    rows = await db.fetch("read transitions", DEVICE_TRANSITIONS_PAGE, device_id, after, limit)
    return [DEVICE_TRANSITIONS.from_row(row) for row in rows]


async def operation(db: Database, operation_id: str) -> OperationSummary | None:
    rows = await db.fetch("read operation", OPERATION, operation_id)
    if not rows:
        return None
    tracks: Counter[Track] = Counter()
    states: Counter[str] = Counter()
    results: Counter[str] = Counter({"SUCCESS": 0, "FAIL": 0})
    for row in rows:
        tracks[row["track"]] += row["devices"]
        if row["state"] is not None:
            states[row["state"]] += row["devices"]
        if row["result"] is not None:
            results[row["result"]] += row["devices"]
    return OperationSummary(
        operation_id=operation_id,
        track=tracks.most_common(1)[0][0],
        devices=sum(tracks.values()),
        states=dict(sorted(states.items())),
        results=dict(results),
    )


async def task(db: Database, task_id: str) -> Task | None:
    row = await db.fetchrow("read task", TASK, task_id)
    return None if row is None else TASKS.from_row(row)


async def tasks(db: Database, where: TaskFilter, after: str, limit: int) -> list[Task]:
    rows = await db.fetch(
        "list tasks", TASK_PAGE, where.status, where.task_type, where.app_id, after, limit
    )
    return [TASKS.from_row(row) for row in rows]


async def task_transitions(
    db: Database, task_id: str, after: int, limit: int
) -> list[TaskTransition]:
    rows = await db.fetch("read task transitions", TASK_TRANSITIONS_PAGE, task_id, after, limit)
    return [TASK_TRANSITIONS.from_row(row) for row in rows]
