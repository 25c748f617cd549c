"""Rows of `events` as the store makes them, for writers that bypass the append path (the scale
benchmark's COPY loader, ceiling A's INSERTs).

`tracker.store.events.COPY_COLUMNS` names the columns and `copy_row` makes a row from a decoded
delivery (its stored form and hash), so these writers follow the schema as it changes and never
name a column themselves.
"""

from __future__ import annotations

import importlib

import asyncpg

from tracker.store.events import COPY_COLUMNS


async def prepare(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
    """What `copy_row` needs of the database first, if the store has such a step: bodies are
    compressed with dictionaries kept in the database (tracker.store.bodies), loaded once."""
    try:
        bodies = importlib.import_module("tracker.store.bodies")
    except ModuleNotFoundError:
        return  # a store that keeps bodies as received needs nothing
    ready = getattr(bodies, "ready", None)
    if ready is not None:
        await ready(conn)


def insert(table: str) -> str:
    """An INSERT of one `copy_row` record into `table` (a copy of `events`)."""
    values = ", ".join(f"${n}" for n in range(1, len(COPY_COLUMNS) + 1))
    columns = ", ".join(COPY_COLUMNS)
    # The record holds its position (an identity column, hence the override).
    return f"INSERT INTO {table} ({columns}) OVERRIDING SYSTEM VALUE VALUES ({values})"  # noqa: S608
