"""Inline projection: inside the append's transaction, load the rows the events touch, fold the
events in log order with the domain's `Projection`, and write back what changed, set-wise, with
the rollup counters moved by the deltas of the memberships that changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from operator import attrgetter
from typing import Any

from tracker.domain.notifications import Notification
from tracker.domain.projection import Changes, Projection, keys_of
from tracker.domain.recorded import Recorded
from tracker.store.database import Connection
from tracker.store.rows import (
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    DEVICES,
    OPERATION_ACTIVITY,
    OPERATION_DEVICES,
    OPERATION_ERRORS,
    OPERATION_VERSIONS,
    OPERATIONS,
    SUB_OPERATIONS,
    TASK_TRANSITIONS,
    TASKS,
)
from tracker.store.table import Table

# {schema}: empty for the live tables, or replay's scratch schema with a dot (constants only).
LOAD_DEVICES = "SELECT * FROM {schema}devices WHERE device_id = ANY($1::text[])"
# Both tracks of each device, and all their sub-operations: which one a track is in depends on
# all of them (domain/precedence.py), and the device's application on both tracks.
LOAD_TRACKS = "SELECT * FROM {schema}device_tracks WHERE device_id = ANY($1::text[])"
LOAD_SUBS = "SELECT * FROM {schema}sub_operations WHERE device_id = ANY($1::text[])"
LOAD_MEMBERS = """
SELECT * FROM {schema}operation_devices
WHERE (operation_id, track, device_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
"""
LOAD_TASKS = "SELECT * FROM {schema}tasks WHERE task_id = ANY($1::text[])"
# A rollup row that fell to zero devices goes: a recount from the members would not have it.
DROP_EMPTY = """
WITH e AS (DELETE FROM {schema}operation_errors WHERE devices = 0 AND operation_id = ANY($1))
DELETE FROM {schema}operation_versions WHERE devices = 0 AND operation_id = ANY($1)
"""


async def apply(
    conn: Connection, events: Sequence[Recorded[Notification]], schema: str | None = None
) -> None:
    """Project events (in position order) inside the caller's transaction.

    `schema`: the tables' schema when not the live ones (replay catching up its scratch copy).
    """
    if not events:
        return
    projection = await load(conn, [event.notification for event in events], schema)
    for event in events:
        projection.apply(event)
    await write(conn, projection.take_changes(), schema)


async def load(
    conn: Connection, notifications: list[Notification], schema: str | None = None
) -> Projection:
    keys = keys_of(notifications)
    prefix = f"{schema}." if schema else ""
    projection = Projection()
    if keys.devices:
        for row in await conn.fetch(LOAD_DEVICES.format(schema=prefix), list(keys.devices)):
            device = DEVICES.from_row(row)
            projection.devices[device.device_id] = device
    if keys.devices:
        devices = list(keys.devices)
        for row in await conn.fetch(LOAD_TRACKS.format(schema=prefix), devices):
            state = DEVICE_TRACKS.from_row(row)
            projection.tracks[state.device_id, state.track] = state
        for row in await conn.fetch(LOAD_SUBS.format(schema=prefix), devices):
            projection.add_sub(SUB_OPERATIONS.from_row(row))
    if keys.members:
        operations, tracks, members = zip(*keys.members, strict=True)
        rows = await conn.fetch(
            LOAD_MEMBERS.format(schema=prefix), list(operations), list(tracks), list(members)
        )
        for row in rows:
            member = OPERATION_DEVICES.from_row(row)
            projection.members[member.operation_id, member.track, member.device_id] = member
    if keys.tasks:
        for row in await conn.fetch(LOAD_TASKS.format(schema=prefix), list(keys.tasks)):
            task = TASKS.from_row(row)
            projection.tasks[task.task_id] = task
    return projection


async def write(conn: Connection, changes: Changes, schema: str | None = None) -> None:
    """Every table that changed, in one statement (one round trip; two when a rollup row may
    have fallen to zero).

    Rows of a stream are locked by its append (events.py); the rollups' rows are shared by the
    appends in flight, which add their deltas. Those go last, to be held for the shortest time
    before COMMIT, and each table's in key order: two appends always take them in the same
    order, and never wait on each other in a cycle.
    """
    errors, versions = changes.rollup.error_deltas(), changes.rollup.version_deltas()
    changed: list[tuple[Table[Any], Sequence[Any]]] = [
        (table, items)
        for table, items in (
            (DEVICES, changes.devices),
            (DEVICE_TRACKS, changes.tracks),
            (SUB_OPERATIONS, changes.subs),
            (DEVICE_TRANSITIONS, changes.device_transitions),
            (OPERATION_DEVICES, changes.members),
            (TASKS, changes.tasks),
            (TASK_TRANSITIONS, changes.task_transitions),
            (OPERATIONS, _in_key_order(OPERATIONS, changes.rollup.counts.values())),
            (OPERATION_ERRORS, errors),  # in key order already (domain/operation.py)
            (OPERATION_VERSIONS, versions),
            (OPERATION_ACTIVITY, _in_key_order(OPERATION_ACTIVITY, changes.activity)),
        )
        if items
    ]
    if changed:
        arrays = [array for table, items in changed for array in table.as_arrays(items)]
        await conn.execute(_write_sql(tuple(table for table, _ in changed), schema), *arrays)
    shrunk = {e.operation_id for e in errors if e.devices < 0}
    shrunk |= {v.operation_id for v in versions if v.devices < 0}
    if shrunk:
        prefix = f"{schema}." if schema else ""
        await conn.execute(DROP_EMPTY.format(schema=prefix), sorted(shrunk))


def _in_key_order(table: Table[Any], rows: Iterable[Any]) -> list[Any]:
    return sorted(rows, key=attrgetter(*table.key))


@cache
def _write_sql(tables: tuple[Table[Any], ...], schema: str | None) -> str:
    """One upsert per table as data-modifying CTEs; PostgreSQL runs each exactly once."""
    if len(tables) == 1:
        return tables[0].write_sql(schema)
    parts, first = [], 1
    for number, table in enumerate(tables):
        parts.append(f"w{number} AS ({table.write_sql(schema, first)})")
        first += len(table.columns)
    return f"WITH {', '.join(parts)} SELECT 1"
