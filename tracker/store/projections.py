"""Inline projection: inside the append's transaction, load the rows the events touch, fold the
events in log order with the domain's `Projection`, and write back what changed, set-wise, with
the rollup counters moved by the deltas of the memberships that changed."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from tracker.domain.notifications import Notification, Track
from tracker.domain.projection import Changes, Projection, keys_of
from tracker.domain.recorded import Recorded
from tracker.store.database import Connection
from tracker.store.rows import (
    HELD,
    OPERATION_ERRORS,
    OPERATION_VERSIONS,
    PROJECTION_TABLES,
    ROLLUPS,
    ProjectionTable,
)
from tracker.store.table import Table

# The streams' own rows first, then the rollups, whose rows the appends in flight share (`write`).
WRITTEN = (*(p for p in PROJECTION_TABLES if p.recount is None), *ROLLUPS)
# A rollup row that fell to zero devices goes: a recount from the members would not have it.
DROP_EMPTY = """
WITH e AS (DELETE FROM {schema}operation_errors WHERE devices = 0 AND operation_id = ANY($1))
DELETE FROM {schema}operation_versions WHERE devices = 0 AND operation_id = ANY($1)
"""


async def apply(
    conn: Connection, events: Sequence[Recorded[Notification]], schema: str | None = None
) -> set[tuple[str, Track]]:
    """Project events (in position order) inside the caller's transaction; the rollouts
    (operation, track) whose rollup rows it wrote, which it now holds until commit.

    `schema`: the tables' schema when not the live ones (replay catching up its scratch copy).
    """
    if not events:
        return set()
    projection = await load(conn, [event.notification for event in events], schema)
    for event in events:
        projection.apply(event)
    changes = projection.take_changes()
    await write(conn, changes, schema)
    return {(row.operation_id, row.track) for row in changes.rollup.count_deltas()}


async def load(
    conn: Connection, notifications: list[Notification], schema: str | None = None
) -> Projection:
    """The stored rows the fold of `notifications` may read (`keys_of`), held unchanged."""
    keys = keys_of(notifications)
    projection = Projection()
    for held in HELD:
        assert held.load is not None  # noqa: S101 - every held table says how it is loaded
        wanted = held.load.keys(keys)
        if not wanted:
            continue
        by = held.load.by
        args = [list(wanted)] if len(by) == 1 else [list(c) for c in zip(*wanted, strict=True)]
        for row in await conn.fetch(_load_sql(held, schema), *args):
            projection.seed(held.table.from_row(row))
    return projection


@cache
def _load_sql(held: ProjectionTable[Any], schema: str | None) -> str:
    """`held`'s rows by its load columns: one `= ANY` of an array, or several columns `IN` the
    rows of parallel arrays."""
    assert held.load is not None  # noqa: S101
    by, target = held.load.by, f"{schema}.{held.table.name}" if schema else held.table.name
    if len(by) == 1:
        return f"SELECT * FROM {target} WHERE {by[0]} = ANY($1::text[])"  # noqa: S608
    arrays = ", ".join(f"${n}::text[]" for n in range(1, len(by) + 1))
    return (
        f"SELECT * FROM {target} WHERE ({', '.join(by)}) "  # noqa: S608 - identifiers
        f"IN (SELECT * FROM unnest({arrays}))"
    )


async def write(conn: Connection, changes: Changes, schema: str | None = None) -> None:
    """Every table that changed, in one statement (one round trip; two when a rollup row may
    have fallen to zero).

    Rows of a stream are locked by its append (events.py); the rollups' rows are shared by the
    appends in flight, which add their deltas. Those go last, to be held for the shortest time
    before COMMIT, and each table's in key order (domain/operation.py, activity.py): two appends
    always take them in the same order, and never wait on each other in a cycle.
    """
    changed: list[tuple[Table[Any], Sequence[Any]]] = [
        (p.table, items) for p in WRITTEN if (items := p.changed(changes))
    ]
    if changed:
        arrays = [array for table, items in changed for array in table.as_arrays(items)]
        await conn.execute(_write_sql(tuple(table for table, _ in changed), schema), *arrays)
    counted = dict(changed)
    shrunk = {
        row.operation_id
        for table in (OPERATION_ERRORS, OPERATION_VERSIONS)
        for row in counted.get(table, ())
        if row.devices < 0
    }
    if shrunk:
        prefix = f"{schema}." if schema else ""
        await conn.execute(DROP_EMPTY.format(schema=prefix), sorted(shrunk))


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
