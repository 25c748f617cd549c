"""Fold the log, as of one snapshot, into scratch tables: in this process or split across several.

Streams are independent (a device's rows depend only on its own events, a task's on its own),
so the log splits by stream into `parts` disjoint partitions. Each partition streams its share
through a server-side cursor inside the *same* exported snapshot, folds it with the domain's
`Projection` (the fold live ingestion uses), COPYs transitions out as it goes and the rows at
the end. With more than one part, each runs in its own process: the fold is pure Python and
one process uses one core.

Memory holds one row per device track, task and operation membership, never the log.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
from asyncio import FIRST_EXCEPTION
from asyncio.subprocess import PIPE, Process
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from tracker.domain.delivery import decode_logged
from tracker.domain.notifications import Notification
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.store.rows import (
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    OPERATION_DEVICES,
    TASK_TRANSITIONS,
    TASKS,
    Table,
)

BATCH = 10_000
PROJECTED = "stream_type IN ('device', 'task')"
# The projected events, as `recorded(row)` reads them.
LOGGED = f"SELECT position, received_at, event_type, raw FROM events WHERE {PROJECTED}"  # noqa: S608
# `hashtext` spreads stream ids evenly; masking keeps the modulus non-negative.
PARTITION = (
    f"{LOGGED} AND ($1 = 1 OR (hashtext(stream_id) & 2147483647) % $1 = $2) ORDER BY position"
)
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")

Counter = Callable[[int], Awaitable[None]]  # told the running count of events folded


@dataclass(frozen=True, slots=True)
class Plan:
    """What every partition needs to know (it crosses to other processes: plain data only)."""

    url: str
    snapshot: str  # exported by the coordinator, whose transaction stays open meanwhile
    shadow: str  # the schema the tables are rebuilt in
    parts: int


@dataclass
class Folded:
    """What one partition did."""

    events: int = 0
    peak_rss_mb: float = 0.0


async def fold_partition(plan: Plan, part: int, counted: Counter) -> Folded:
    """Fold partition `part` of the log as of the plan's snapshot into its shadow schema."""
    if not SNAPSHOT_ID.fullmatch(plan.snapshot):
        raise ValueError(f"not a snapshot id: {plan.snapshot!r}")
    shadow = plan.shadow
    reader = await asyncpg.connect(plan.url)
    writer = await asyncpg.connect(plan.url)
    folded, projection = Folded(), Projection()
    try:
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            # Safe to splice: checked against the shape PostgreSQL gives snapshot ids.
            await reader.execute(f"SET TRANSACTION SNAPSHOT '{plan.snapshot}'")
            async for row in reader.cursor(PARTITION, plan.parts, part, prefetch=BATCH):
                if (event := recorded(row)) is not None:
                    projection.apply(event)
                folded.events += 1
                if folded.events % BATCH == 0:
                    await _flush_transitions(writer, shadow, projection)
                    projection.forget_changes()  # every row is written at the end anyway
                    await counted(folded.events)
        await _flush_transitions(writer, shadow, projection)
        for table, items in (
            (DEVICE_TRACKS, list(projection.tracks.values())),
            (OPERATION_DEVICES, list(projection.members.values())),
            (TASKS, list(projection.tasks.values())),
        ):
            await _copy(writer, shadow, table, items)
        await counted(folded.events)
    finally:
        await reader.close()
        await writer.close()
    folded.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return folded


async def fold_log(plan: Plan, counted: Counter) -> list[Folded]:
    """All partitions: the first in this process, each other one in a child process.

    Children are plain `python -m tracker.store.rebuild` processes: they import only what
    folding needs, and the plan (with the database URL) reaches them on stdin, not in `ps`.
    Folding one partition here rather than idling saves a whole interpreter's memory.
    """
    if plan.parts == 1:
        return [await fold_partition(plan, 0, counted)]
    counts = [0] * plan.parts

    async def counted_here(events: int) -> None:
        counts[0] = events  # reported with the children's by the loop below

    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, stdin=PIPE, stdout=PIPE
        )
        for _ in range(1, plan.parts)
    ]
    followers = [
        asyncio.create_task(fold_partition(plan, 0, counted_here)),
        *(
            asyncio.create_task(_follow(child, {**asdict(plan), "part": part}, counts))
            for part, child in enumerate(children, 1)
        ),
    ]
    try:
        while not all(f.done() for f in followers):
            await asyncio.wait(followers, timeout=0.1, return_when=FIRST_EXCEPTION)
            if failed := [f for f in followers if f.done() and f.exception()]:
                raise failed[0].exception()  # type: ignore[misc]
            await counted(sum(counts))
        return [f.result() for f in followers]
    finally:
        for follower in followers:
            follower.cancel()
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()


async def _follow(child: Process, plan: dict[str, Any], counts: list[int]) -> Folded:
    """Hand a child its plan, then read its progress lines and its final tally."""
    part = plan["part"]
    assert child.stdin is not None  # noqa: S101 - both were asked for as PIPEs
    assert child.stdout is not None  # noqa: S101
    child.stdin.write(json.dumps(plan).encode())
    await child.stdin.drain()
    child.stdin.close()
    folded = None
    async for line in child.stdout:
        kind, _, data = line.decode().partition(" ")
        if kind == "progress":
            counts[part] = int(data)
        elif kind == "done":
            folded = Folded(**json.loads(data))
    code = await child.wait()
    if code != 0 or folded is None:
        raise RuntimeError(f"replay partition {part} failed (exit code {code}; see its stderr)")
    return folded


def _child() -> None:
    """A partition process: plan on stdin, `progress N` lines and `done {json}` on stdout."""
    given = json.loads(sys.stdin.read())
    part = given.pop("part")

    async def counted(events: int) -> None:
        sys.stdout.write(f"progress {events}\n")
        sys.stdout.flush()

    folded = asyncio.run(fold_partition(Plan(**given), part, counted))
    sys.stdout.write(f"done {json.dumps(asdict(folded))}\n")


def recorded(row: asyncpg.Record) -> Recorded[Notification] | None:
    """A logged row (position, received_at, event_type, raw) as the fold takes it; None if the
    type is not one we project."""
    notification = decode_logged(row["event_type"], row["raw"])
    if notification is None:
        return None
    return Recorded(row["position"], row["received_at"], notification)


async def _flush_transitions(
    writer: asyncpg.Connection, shadow: str, projection: Projection
) -> None:
    device, task = projection.take_transitions()
    await _copy(writer, shadow, DEVICE_TRANSITIONS, device)
    await _copy(writer, shadow, TASK_TRANSITIONS, task)


async def _copy(
    writer: asyncpg.Connection, shadow: str, table: Table[Any], items: list[Any]
) -> None:
    if items:
        await writer.copy_records_to_table(
            table.name,
            records=[table.to_row(item) for item in items],
            columns=table.column_names,
            schema_name=shadow,
        )


if __name__ == "__main__":
    _child()
