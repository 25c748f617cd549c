"""Inline projection: inside the append's transaction, load the rows the events touch, fold the
events in log order with the domain's `Projection`, and write back what changed, set-wise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracker.domain.notifications import Notification
from tracker.domain.projection import Changes, Projection, keys_of
from tracker.domain.recorded import Recorded
from tracker.store.database import Connection
from tracker.store.rows import (
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    OPERATION_DEVICES,
    TASK_TRANSITIONS,
    TASKS,
    Table,
)

LOAD_TRACKS = """
SELECT * FROM device_tracks
WHERE (device_id, track) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""
LOAD_MEMBERS = """
SELECT * FROM operation_devices
WHERE (operation_id, device_id, track) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
"""
LOAD_TASKS = "SELECT * FROM tasks WHERE task_id = ANY($1::text[])"


async def apply(conn: Connection, events: Sequence[Recorded[Notification]]) -> None:
    """Project events (in position order) inside the caller's transaction."""
    if not events:
        return
    projection = await load(conn, [event.notification for event in events])
    for event in events:
        projection.apply(event)
    await write(conn, projection.take_changes())


async def load(conn: Connection, notifications: list[Notification]) -> Projection:
    keys = keys_of(notifications)
    projection = Projection()
    if keys.tracks:
        devices, tracks = zip(*keys.tracks, strict=True)
        for row in await conn.fetch(LOAD_TRACKS, list(devices), list(tracks)):
            state = DEVICE_TRACKS.from_row(row)
            projection.tracks[state.device_id, state.track] = state
    if keys.members:
        operations, devices, tracks = zip(*keys.members, strict=True)
        rows = await conn.fetch(LOAD_MEMBERS, list(operations), list(devices), list(tracks))
        for row in rows:
            member = OPERATION_DEVICES.from_row(row)
            projection.members[member.operation_id, member.device_id, member.track] = member
    if keys.tasks:
        for row in await conn.fetch(LOAD_TASKS, list(keys.tasks)):
            task = TASKS.from_row(row)
            projection.tasks[task.task_id] = task
    return projection


async def write(conn: Connection, changes: Changes, schema: str | None = None) -> None:
    """One statement per table that changed."""
    await _write(conn, DEVICE_TRACKS, changes.tracks, schema)
    await _write(conn, DEVICE_TRANSITIONS, changes.device_transitions, schema)
    await _write(conn, OPERATION_DEVICES, changes.members, schema)
    await _write(conn, TASKS, changes.tasks, schema)
    await _write(conn, TASK_TRANSITIONS, changes.task_transitions, schema)


async def _write(
    conn: Connection, table: Table[Any], items: Sequence[Any], schema: str | None
) -> None:
    if items:
        await conn.execute(table.write_sql(schema), *table.as_arrays(items))
