"""The SQL that spells the domain's values says what the code declares (domain/notifications.py).

- A partial index serves a query only when the query repeats its predicate (the planner proves
  one from the other, on parsed expressions): each listing's partial-index predicate, generated
  from the declarations (store/queries.py), must parse to exactly the index's, as PostgreSQL
  reads it back from pg_indexes.
- Each CHECK that lists a column's values lists exactly the declared ones, in declared order.
Either side may be the one that changed: a new state, a renamed track, an edited migration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import get_args

import asyncpg
import pytest

from tracker.domain import subtask
from tracker.domain.delivery import StreamType
from tracker.domain.device import BUSY_STATES, Kind, Reason
from tracker.domain.notifications import TRACKS, UPGRADE_STATES, AlertState
from tracker.domain.task import Source
from tracker.store import literals, queries, rollups
from tracker.store.listing import Index, Listing
from tracker.store.queries import STORED_MEMBER_STATES, STORED_RESULTS, STORED_STATES
from tracker.store.rows import ALL_TABLES

INDEX_PREDICATE = """
SELECT substring(indexdef FROM ' WHERE (.*)$') FROM pg_indexes
WHERE schemaname = current_schema() AND indexname = $1
"""
ENUMERATED = """
SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'c' AND c.connamespace = current_schema()::regnamespace
  AND cardinality(c.conkey) = 1 AND pg_get_constraintdef(c.oid) LIKE '%= ANY (ARRAY[%'
"""
# Every column whose values a CHECK lists, with the declaration they come from.
DECLARED: dict[tuple[str, str], Sequence[str]] = {
    ("events", "stream_type"): get_args(StreamType),
    ("device_tracks", "track"): TRACKS,
    ("device_tracks", "state"): STORED_STATES,
    ("device_tracks", "result"): STORED_RESULTS,
    ("sub_operations", "track"): TRACKS,
    ("sub_operations", "state"): UPGRADE_STATES,
    ("device_transitions", "kind"): get_args(Kind),
    ("device_transitions", "reason"): get_args(Reason),
    ("operation_devices", "state"): STORED_MEMBER_STATES,
    ("operation_devices", "result"): STORED_RESULTS,
    ("task_transitions", "source"): get_args(Source),
    ("alerts", "state"): get_args(AlertState),
    ("alert_transitions", "state"): get_args(AlertState),
}
# Each listing's partial indexes, with the table they are on.
PARTIAL: list[tuple[str, Index]] = [
    (listing.table, index)
    for module in (queries, rollups)
    for listing in vars(module).values()
    if isinstance(listing, Listing)
    for index in listing.indexes
    if index.where
]
# The states each table's partial indexes hold: a device track's busy ones, and an IoTDA
# member's busy subtask statuses (domain/subtask.py).
BUSY = {"device_tracks": BUSY_STATES, "operation_devices": subtask.BUSY}


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back: the probes leave nothing."""
    connection = await asyncpg.connect(database_url)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


async def _as_postgres_reads(conn: asyncpg.Connection, table: str, predicate: str) -> str:
    """`predicate` as PostgreSQL prints it back once parsed (the form pg_indexes shows)."""
    await conn.execute(f"CREATE INDEX predicate_probe ON {table} (device_id) WHERE {predicate}")
    printed: str = await conn.fetchval(INDEX_PREDICATE, "predicate_probe")
    await conn.execute("DROP INDEX predicate_probe")
    return printed


def test_the_partial_indexes_are_the_stuck_ones() -> None:
    assert {i.name for _, i in PARTIAL} == {
        "device_tracks_stuck",
        "device_tracks_stuck_by_operation",
        "device_tracks_stuck_by_app",
        "operation_devices_busy",
    }


@pytest.mark.parametrize(("table", "index"), PARTIAL, ids=[i.name for _, i in PARTIAL])
async def test_a_partial_index_has_the_predicate_its_listing_repeats(
    conn: asyncpg.Connection, table: str, index: Index
) -> None:
    in_database = await conn.fetchval(INDEX_PREDICATE, index.name)
    assert in_database is not None, f"{index.name} is not a partial index in the database"
    assert in_database == await _as_postgres_reads(conn, table, index.where)
    assert ", ".join(f"'{state}'::text" for state in BUSY[table]) in in_database


def test_the_stuck_count_repeats_the_predicates_of_the_indexes_it_counts_over() -> None:
    """rollups.STUCK counts over the stuck and busy ranges: only with their predicates."""
    assert queries.STUCK_WHERE in rollups.STUCK
    assert rollups.BUSY_WHERE in rollups.STUCK


async def test_every_check_of_a_columns_values_lists_the_declared_ones(
    conn: asyncpg.Connection,
) -> None:
    found = {
        (r["table_name"], r["column_name"]): r["definition"] for r in await conn.fetch(ENUMERATED)
    }
    ours = {"events", *(t.name for t in ALL_TABLES)}
    assert {key for key in found if key[0] in ours} == set(DECLARED)
    for (table, column), values in DECLARED.items():
        await conn.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT values_probe "
            f"CHECK ({literals.one_of(column, values)}) NOT VALID"
        )
        generated = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'values_probe'"
        )
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT values_probe")
        assert found[table, column] == generated.removesuffix(" NOT VALID"), (table, column)
