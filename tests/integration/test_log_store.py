"""The event log: append-only, migrated once, read by followers that never skip."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.support.waiting import until_waiting_for_lock
from tracker.domain.delivery import NewEvent, decode
from tracker.store import bodies, events, horizon
from tracker.store.database import Database
from tracker.store.migrations import available, migrate

NOW = datetime(2026, 11, 21, tzinfo=UTC)
LAST_DRAWN = "SELECT last_value FROM events_position_seq"


async def append_one(database: Database, raw: bytes) -> int:
    async with database.transaction("append") as conn:
        [appended] = await events.append(conn, [decode(raw)], NOW)
    return appended.position


@pytest.mark.parametrize("table", ["events", "rejected"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET received_at = now()",
        "UPDATE {t} SET received_at = now() WHERE false",
        "DELETE FROM {t}",
        "TRUNCATE {t}",
    ],
)
async def test_history_cannot_be_rewritten(
    database: Database, examples: dict[str, bytes], table: str, statement: str
) -> None:
    await append_one(database, examples["oceanconnect-swUpgradeStateChangeNotify"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=f"{table} is append-only"):
        await database.pool.execute(statement.format(t=table))
    assert await database.pool.fetchval("SELECT count(*) FROM events") == 1


async def test_the_log_keeps_the_exact_bytes_compressed(
    database: Database, examples: dict[str, bytes]
) -> None:
    for stem, raw in examples.items():
        position = await append_one(database, raw)
        row = await database.pool.fetchrow(
            "SELECT raw, codec FROM events WHERE position = $1", position
        )
        assert row is not None, stem
        assert bodies.unpack(row["codec"], row["raw"]) == raw, stem
        assert row["codec"] == 1, stem
        assert len(row["raw"]) < len(raw) / 3, stem  # the examples are in dictionary 1
        assert await events.read_raw(database, position) == raw, stem


async def test_a_body_the_dictionary_cannot_shrink_is_kept_as_received(
    database: Database,
) -> None:
    odd = b'{"x": 1}'  # shorter than any zstd frame
    position = await append_one(database, odd)
    row = await database.pool.fetchrow(
        "SELECT raw, codec FROM events WHERE position = $1", position
    )
    assert row is not None
    assert (row["codec"], bytes(row["raw"])) == (0, odd)
    assert await events.read_raw(database, position) == odd


async def test_a_dictionary_once_written_cannot_change(database: Database) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="body_codecs is append-only"):
        await database.pool.execute("UPDATE body_codecs SET dictionary = '' WHERE id = 1")


async def test_migrations_are_idempotent_and_safe_from_many_processes_at_once(
    empty_database_url: str,
) -> None:
    async def one() -> list[str]:
        conn = await asyncpg.connect(empty_database_url)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    results = await asyncio.gather(*(one() for _ in range(8)))
    names = [m.name for m in available()]
    assert max(results, key=len) == names  # exactly one of them applied everything
    assert sum(len(r) for r in results) == len(names)
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(names)
        assert await migrate(conn) == []
    finally:
        await conn.close()


def on_device(raw: bytes, device: str) -> bytes:
    """The same notification from another device: another stream."""
    return orjson.dumps(orjson.loads(raw) | {"deviceId": device})


@asynccontextmanager
async def held_open(
    database: Database, raw: bytes
) -> AsyncIterator[tuple[int, asyncpg.transaction.Transaction]]:
    """An append whose transaction stays open: its position, and the transaction to end."""
    async with database.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        [appended] = await events.append(conn, [decode(raw)], NOW)
        position = appended.position
        try:
            yield position, transaction
        finally:
            with contextlib.suppress(asyncpg.InterfaceError):  # ended by the test already
                await transaction.rollback()


async def test_appends_to_different_streams_run_side_by_side(
    database: Database, examples: dict[str, bytes]
) -> None:
    """No global critical section: B commits while A, on another stream, is still open."""
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    async with held_open(database, on_device(raw, "a")) as (position_a, transaction):
        position_b = await asyncio.wait_for(append_one(database, on_device(raw, "b")), 5)
        await transaction.rollback()
    assert position_b > position_a


async def test_a_late_commit_is_never_skipped_by_a_follower(
    database: Database, examples: dict[str, bytes]
) -> None:
    """Writer A draws a position and stays uncommitted; B, on another stream, draws a later one
    and commits. A follower must not page past A's position: it sees neither until A commits."""
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    async with held_open(database, on_device(raw, "a")) as (position_a, transaction):
        position_b = await append_one(database, on_device(raw, "b"))
        assert position_b > position_a
        # B is committed and visible, but below it A may still commit: the page stops short.
        assert await horizon.read(database) < position_a
        assert await events.read_after(database, 0, 100) == []
        await transaction.commit()
    assert [e.position for e in await events.read_after(database, 0, 100)] == [
        position_a,
        position_b,
    ]
    assert await horizon.read(database) == position_b


async def test_an_append_publishes_its_marker_before_it_draws_a_position(
    database: Database, examples: dict[str, bytes]
) -> None:
    """Hold the marker's key exclusive: the append must wait for it without having drawn.
    Drawn first, its position would be invisible to a horizon read in between (horizon.py)."""
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    await append_one(database, raw)
    last = await database.pool.fetchval(LAST_DRAWN)
    async with database.pool.acquire() as blocker:
        await blocker.execute("SELECT pg_advisory_lock($1)", horizon.MARKER << 48 | last)
        writer = asyncio.create_task(append_one(database, on_device(raw, "b")))
        try:
            marker = horizon.MARKER << 48 | last
            await until_waiting_for_lock(database.pool, key=marker, unless_done=[writer])
            assert not writer.done()
            assert await database.pool.fetchval(LAST_DRAWN) == last
        finally:
            await blocker.execute("SELECT pg_advisory_unlock($1)", horizon.MARKER << 48 | last)
        assert await writer == last + 1


async def test_appends_lock_their_streams_in_one_order(
    database: Database, examples: dict[str, bytes]
) -> None:
    """Batches naming the same streams in opposite orders, side by side: never a deadlock."""
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    streams = [decode(on_device(raw, f"s{n}")) for n in range(6)]

    async def append(order: list[NewEvent]) -> None:
        async with database.transaction("append") as conn:
            await events.append(conn, order, NOW)
            await asyncio.sleep(0.01)  # hold the locks while the others come

    await asyncio.gather(*(append(streams if n % 2 else streams[::-1]) for n in range(16)))
    assert await database.pool.fetchval("SELECT count(*) FROM events") == 16 * 6


async def test_a_stream_commits_in_position_order(
    database: Database, examples: dict[str, bytes]
) -> None:
    """A second append to the same stream waits for the first to commit: a stream's events
    are chained and projected in position order (invariant 3)."""
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    async with held_open(database, raw) as (position_a, transaction):
        writer_b = asyncio.create_task(append_one(database, raw))
        await until_waiting_for_lock(database.pool, unless_done=[writer_b])  # A's stream lock
        assert not writer_b.done()
        await transaction.commit()
        position_b = await writer_b
    assert position_b > position_a


async def test_a_rolled_back_append_does_not_hold_the_horizon(
    database: Database, examples: dict[str, bytes]
) -> None:
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    async with held_open(database, on_device(raw, "a")) as (_, transaction):
        position_b = await append_one(database, on_device(raw, "b"))
        await transaction.rollback()
    assert await horizon.read(database) == position_b
    assert [e.position for e in await events.read_after(database, 0, 100)] == [position_b]


async def test_a_follower_under_concurrent_writers_sees_every_event(
    database: Database, examples: dict[str, bytes]
) -> None:
    """Eight writers on eight streams, side by side, and a follower paging all along."""
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    writers_done = asyncio.Event()
    seen: list[int] = []

    async def follow() -> None:
        after = 0
        while True:
            finished = writers_done.is_set()
            page = await events.read_after(database, after, 50)
            seen.extend(e.position for e in page)
            after = page[-1].position if page else after
            if finished and not page:
                return
            await asyncio.sleep(0)

    async def write(device: str, count: int) -> None:
        body = on_device(raw, device)
        for _ in range(count):
            await append_one(database, body)

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(f"d{n}", 25) for n in range(8)))
    writers_done.set()
    await follower
    logged = [
        r["position"] for r in await database.pool.fetch("SELECT position FROM events ORDER BY 1")
    ]
    assert len(logged) == 200
    assert seen == logged


async def test_a_slow_migration_is_not_cut_short_by_the_request_timeout(
    empty_database_url: str, tmp_path: Path
) -> None:
    """004 rewrites the whole log once: minutes on a big one, against a 5 s request timeout."""
    (tmp_path / "001_slow.sql").write_text("SELECT pg_sleep(1.5); CREATE TABLE slow_done (x int);")
    database = await Database.open(empty_database_url, timeout=0.5, size=1)
    try:
        async with database.pool.acquire() as conn:
            assert await migrate(conn, tmp_path) == ["001_slow.sql"]
    finally:
        await database.close()
