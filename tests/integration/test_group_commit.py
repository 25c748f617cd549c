"""Group commit: concurrent deliveries share transactions, and each answer still means durable."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from datetime import UTC, datetime

import pytest

from tests.support.waiting import until_waiting_for_lock
from tracker.domain.delivery import NewEvent, decode
from tracker.store.database import Database
from tracker.store.errors import Unavailable, Unstorable
from tracker.store.events import APPEND_LOCK
from tracker.store.group_commit import GroupCommit
from tracker.store.migrations import migrate

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def device_event(examples: dict[str, bytes], device: str) -> NewEvent:
    body = json.loads(examples["oceanconnect-swUpgradeStateChangeNotify"])
    body["deviceId"] = device
    return decode(json.dumps(body).encode())


async def logged(database: Database) -> dict[int, str]:
    rows = await database.pool.fetch("SELECT position, stream_id FROM events ORDER BY position")
    return {row["position"]: row["stream_id"] for row in rows}


async def test_concurrent_appends_share_transactions_and_answer_after_commit(
    database: Database, examples: dict[str, bytes]
) -> None:
    batches: list[int] = []
    appends = GroupCommit(database, on_commit=batches.append)
    visible_when_answered: list[bool] = []

    async def deliver(device: str) -> int:
        position = await appends.append(device_event(examples, device))
        # Answered means committed: another connection sees it already.
        seen = await database.pool.fetchval(
            "SELECT count(*) FROM events WHERE position = $1", position
        )
        visible_when_answered.append(seen == 1)
        return position

    positions = await asyncio.gather(*(deliver(f"d-{i}") for i in range(200)))

    assert sum(batches) == 200
    assert len(batches) < 200 / 4  # shared, not one transaction per delivery
    assert all(visible_when_answered)
    log = await logged(database)
    assert sorted(positions) == sorted(log)
    assert {log[p] for p in positions} == {f"d-{i}" for i in range(200)}
    # Each caller got its own event's position.
    assert all(log[p] == f"d-{i}" for i, p in enumerate(positions))
    tracks = await database.pool.fetchval("SELECT count(*) FROM device_tracks")
    assert tracks == 200  # projected in the same transactions


async def test_a_lone_delivery_is_committed_at_once(
    database: Database, examples: dict[str, bytes]
) -> None:
    appends = GroupCommit(database)
    position = await asyncio.wait_for(appends.append(device_event(examples, "alone")), 2)
    assert (await logged(database))[position] == "alone"


async def test_a_batch_that_cannot_commit_fails_only_its_own_callers(
    database_url: str, examples: dict[str, bytes]
) -> None:
    """Hold the append lock so the first batch times out; the next batch, queued behind it,
    must still land. One flusher: the next batch starts only when the first has failed, so
    its deadline runs from then, half a second after the lock is released, not a moment."""
    database = await Database.open(database_url, timeout=0.5, size=4)
    try:
        async with database.pool.acquire() as conn:
            await migrate(conn)
        batches: list[int] = []
        appends = GroupCommit(database, flushers=1, on_commit=batches.append)
        async with database.pool.acquire() as blocker:
            await blocker.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
            first = [
                asyncio.create_task(appends.append(device_event(examples, f"early-{i}")))
                for i in range(5)
            ]
            # The first batch is taken, and waits for the lock: what comes now is the next.
            await until_waiting_for_lock(database.pool, key=APPEND_LOCK, unless_done=first)
            second = [
                asyncio.create_task(appends.append(device_event(examples, f"late-{i}")))
                for i in range(5)
            ]
            done, _ = await asyncio.wait(first, timeout=3)
            assert done == set(first)
            await blocker.execute("SELECT pg_advisory_unlock($1)", APPEND_LOCK)
        for task in first:
            with pytest.raises(Unavailable):
                task.result()
        positions = await asyncio.wait_for(asyncio.gather(*second), 3)
        log = await logged(database)
        assert sorted(log.values()) == sorted(f"late-{i}" for i in range(5))
        assert sorted(positions) == sorted(log)
        assert batches == [5]  # the five late ones, together: the next batch
    finally:
        await database.close()


async def test_one_bad_delivery_does_not_sink_its_batch(
    database: Database, examples: dict[str, bytes]
) -> None:
    """A delivery the database refuses (here a row the schema's CHECK refuses) fails alone, as
    `Unstorable` (a refusal, not a 500), and the batch is split in halves, not one by one."""
    commits: list[int] = []
    appends = GroupCommit(database, on_commit=commits.append)
    good = [device_event(examples, f"good-{i}") for i in range(100)]
    bad = dataclasses.replace(good[0], stream_type="bogus")  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(appends.append(event) for event in [*good[:60], bad, *good[60:]]),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert results[60] is failures[0]
    assert isinstance(failures[0], Unstorable)
    assert "CheckViolationError" in str(failures[0])
    assert sorted((await logged(database)).values()) == sorted(f"good-{i}" for i in range(100))
    assert sum(commits) == 100
    assert len(commits) <= 2 * math.ceil(math.log2(101)), commits  # halves, not 100 commits
    positions = [r for r in results if isinstance(r, int)]
    assert positions == sorted(positions)  # still in the order they arrived


async def test_drain_waits_for_what_is_queued(
    database: Database, examples: dict[str, bytes]
) -> None:
    appends = GroupCommit(database)
    pending = [
        asyncio.create_task(appends.append(device_event(examples, f"d-{i}"))) for i in range(30)
    ]
    await asyncio.sleep(0)
    await appends.drain()
    assert all(task.done() for task in pending)
    assert len(await logged(database)) == 30


async def test_close_finishes_the_batches_in_flight_and_refuses_what_waits_behind_them(
    database: Database, examples: dict[str, bytes]
) -> None:
    """At shutdown nobody waits for the queue any more: commit what is in flight, no more."""
    committed: list[int] = []
    appends = GroupCommit(database, on_commit=committed.append)

    async def close() -> list[int]:
        """Close; what had committed by the time it returned."""
        await appends.close()
        return list(committed)

    async with database.pool.acquire() as blocker:
        await blocker.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
        in_flight: list[asyncio.Task[int]] = []
        for name in ("first", "second")[: appends.flushers]:
            in_flight.append(asyncio.create_task(appends.append(device_event(examples, name))))
            await until_waiting_for_lock(  # its batch now waits for the lock
                database.pool, key=APPEND_LOCK, sessions=len(in_flight), unless_done=in_flight
            )
        queued = [
            asyncio.create_task(appends.append(device_event(examples, f"later-{i}")))
            for i in range(3)
        ]
        await asyncio.sleep(0)  # one turn of the loop: the three are queued, behind the two
        closing = asyncio.create_task(close())
        await blocker.execute("SELECT pg_advisory_unlock($1)", APPEND_LOCK)
    # It waited for the batches in flight, which committed before it returned...
    assert await asyncio.wait_for(closing, 5) == [1] * appends.flushers
    positions = [await task for task in in_flight]
    for task in queued:
        with pytest.raises(Unavailable):
            await task
    assert await logged(database) == dict(zip(positions, ("first", "second"), strict=False))
