"""Fold the log, as of one snapshot, into scratch tables, one stream at a time: in this process
or split across several, in memory bounded by a constant.

Streams are independent (a device's rows depend only on its own events, a task's on its own),
so the log is read in stream order (the `events_stream` index: stream, then position) and each
stream is folded on its own, with the domain's `Projection` (the fold live ingestion uses). When
a stream ends its rows are final: they join the COPY buffers and its state is dropped. Memory
holds one stream's state and at most `BATCH` rows per table, whatever the size of the fleet or
of the log. The key space is cut into `parts` ranges of about equal size (from a sample), each
folded by its own process: the fold is pure Python and one process uses one core.

The rollups (operations, their errors, versions and activity) are not folded: replay recounts
them from the rebuilt memberships and audit trail (`RECOUNT`, from each rollup's `recount` in
store/rows.py), which is what the live counters must equal.
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
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from tracker.domain.delivery import decode_logged
from tracker.domain.notifications import Notification
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.domain.registry import PROJECTED_STREAMS
from tracker.store import bodies, literals
from tracker.store.rows import HELD, ROLLUPS, TRAILS
from tracker.store.table import Table

BATCH = 10_000
PROJECTED = literals.one_of("stream_type", PROJECTED_STREAMS)  # "stream_type IN ('device', ..."
# The projected events, as `recorded(row)` reads them (by column number: the fold's hot path).
LOGGED = (
    "SELECT position, received_at, event_type, raw, codec, stream_type, stream_id "  # noqa: S608
    f"FROM events WHERE {PROJECTED}"
)
POSITION, RECEIVED_AT, EVENT_TYPE, RAW, CODEC, STREAM_TYPE, STREAM_ID = range(7)
# A sample of the key space, to cut it into parts of about equal numbers of events.
SAMPLE = f"""
SELECT stream_type, stream_id FROM events TABLESAMPLE SYSTEM ($1) WHERE {PROJECTED}
ORDER BY stream_type, stream_id
"""  # noqa: S608
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
# Rollups recounted from the memberships: the definition the live deltas must agree with.
RECOUNT = "".join(rollup.recount or "" for rollup in ROLLUPS)

Counter = Callable[[int], Awaitable[None]]  # told the running count of events folded
Bound = tuple[str, str] | None  # (stream_type, stream_id); None: open


@dataclass(frozen=True, slots=True)
class Plan:
    """What every partition needs to know (it crosses to other processes: plain data only)."""

    url: str
    snapshot: str  # exported by the coordinator, whose transaction stays open meanwhile
    shadow: str  # the schema the tables are rebuilt in
    bounds: list[Bound]  # part k folds the streams in [bounds[k], bounds[k + 1])
    horizon: int  # read before the snapshot: every event up to it is in it (horizon.py)

    @property
    def parts(self) -> int:
        return len(self.bounds) - 1


@dataclass
class Folded:
    """What one partition did."""

    events: int = 0
    peak_rss_mb: float = 0.0


async def cut(reader: asyncpg.Connection, total: int, parts: int) -> list[Bound]:
    """`parts` ranges of the key space, each with about `total / parts` events."""
    if parts <= 1 or total == 0:
        return [None, None]
    percent = min(100.0, 100.0 * 20_000 / total)  # about 20,000 sampled events
    keys = [(r["stream_type"], r["stream_id"]) for r in await reader.fetch(SAMPLE, percent)]
    inner = sorted({keys[len(keys) * k // parts] for k in range(1, parts)} if keys else set())
    return [None, *inner, None]


def partition_query(low: Bound, high: Bound) -> str:
    """Events of the streams in [low, high) up to the horizon (the last parameter), stream by
    stream, each in log order.

    Bounds are spelled out rather than made optional (`$1 IS NULL OR ...`): a catch-all would
    keep the planner from walking the index range, and the log would be sorted whole instead.
    """
    where, first = [], 1
    if low is not None:
        where.append(f"(stream_type, stream_id) >= (${first}, ${first + 1})")
        first += 2
    if high is not None:
        where.append(f"(stream_type, stream_id) < (${first}, ${first + 1})")
        first += 2
    where.append(f"position <= ${first}")
    clauses = "".join(f" AND {w}" for w in where)
    return f"{LOGGED}{clauses} ORDER BY stream_type, stream_id, position"


@dataclass
class _Rows:
    """Finished streams' rows, waiting for COPY; flushed at `BATCH` rows, in the background:
    PostgreSQL takes one batch while the fold makes the next."""

    writer: asyncpg.Connection
    shadow: str
    waiting: dict[Table[Any], list[Any]] = field(default_factory=dict)
    count: int = 0
    copying: asyncio.Task[None] | None = None

    def take(self, projection: Projection) -> None:
        """A finished stream: all its rows."""
        for held in HELD:
            assert held.held is not None  # noqa: S101 - what makes it held
            rows = [held.table.to_row(item) for item in held.held(projection)]
            if rows:
                self.waiting.setdefault(held.table, []).extend(rows)
                self.count += len(rows)
        self.take_transitions(projection)

    def take_transitions(self, projection: Projection) -> None:
        for trail in TRAILS:
            assert trail.trail is not None  # noqa: S101 - what makes it a trail
            items = trail.trail(projection)
            if items:
                self.waiting.setdefault(trail.table, []).extend(map(trail.table.to_row, items))
                self.count += len(items)
                items.clear()

    async def flush(self, *, unless_below: int = 0) -> None:
        """Start copying what is waiting (once the copy before has ended); `unless_below`:
        leave it waiting until there is that much."""
        if self.count < unless_below:
            return
        await self.done()
        self.copying = asyncio.create_task(self._copy(self.waiting))
        self.waiting, self.count = {}, 0

    async def done(self) -> None:
        """Wait for the copy in flight, if any (and raise what it raised)."""
        if self.copying is not None:
            copying, self.copying = self.copying, None
            await copying

    async def _copy(self, waiting: dict[Table[Any], list[Any]]) -> None:
        for table, rows in waiting.items():
            await self.writer.copy_records_to_table(
                table.name, records=rows, columns=table.column_names, schema_name=self.shadow
            )


async def fold_partition(plan: Plan, part: int, counted: Counter) -> Folded:
    """Fold partition `part` of the log as of the plan's snapshot into its shadow schema."""
    if not SNAPSHOT_ID.fullmatch(plan.snapshot):
        raise ValueError(f"not a snapshot id: {plan.snapshot!r}")
    low, high = plan.bounds[part], plan.bounds[part + 1]
    reader = await asyncpg.connect(plan.url)
    writer = await asyncpg.connect(plan.url)
    folded = Folded()
    out = _Rows(writer, plan.shadow)
    try:
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            # Safe to splice: checked against the shape PostgreSQL gives snapshot ids.
            await reader.execute(f"SET TRANSACTION SNAPSHOT '{plan.snapshot}'")
            await bodies.ready(reader)
            stream, projection = None, Projection(changes=False)
            args = [*(low or ()), *(high or ()), plan.horizon]
            cursor = await reader.cursor(partition_query(low, high), *args)
            fetching = asyncio.create_task(cursor.fetch(BATCH))
            while rows := await fetching:
                # PostgreSQL reads the next batch while this one is folded.
                fetching = asyncio.create_task(cursor.fetch(BATCH))
                if not all(bodies.knows(codec) for codec in {row[CODEC] for row in rows}):
                    await bodies.ready(reader, {row[CODEC] for row in rows})
                for row in rows:
                    key = (row[STREAM_TYPE], row[STREAM_ID])
                    if key != stream:
                        out.take(projection)  # the stream before is complete: rows are final
                        projection, stream = Projection(changes=False), key
                    if (event := recorded(row)) is not None:
                        projection.apply(event)
                folded.events += len(rows)
                out.take_transitions(projection)  # final already: a long stream stays small
                await out.flush(unless_below=BATCH)
                await counted(folded.events)
            out.take(projection)
        await out.flush()
        await out.done()
        await counted(folded.events)
    finally:
        if out.copying is not None:
            out.copying.cancel()
        await reader.close()
        await writer.close()
    folded.peak_rss_mb = peak_rss_mb()
    return folded


def peak_rss_mb() -> float:
    """This process's own peak resident memory. Linux's VmHWM: ru_maxrss is not the process's
    own, since exec carries over the high-water mark of the process it was forked from."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # noqa: PTH123
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    given["bounds"] = [tuple(b) if b is not None else None for b in given["bounds"]]

    async def counted(events: int) -> None:
        sys.stdout.write(f"progress {events}\n")
        sys.stdout.flush()

    folded = asyncio.run(fold_partition(Plan(**given), part, counted))
    sys.stdout.write(f"done {json.dumps(asdict(folded))}\n")


def recorded(row: asyncpg.Record) -> Recorded[Notification] | None:
    """A logged row (`LOGGED`'s columns) as the fold takes it; None if
    the type is not one we project. `bodies.ready` must have been awaited on its database."""
    notification = decode_logged(row[EVENT_TYPE], bodies.unpack(row[CODEC], row[RAW]))
    if notification is None:
        return None
    return Recorded(row[POSITION], row[RECEIVED_AT], notification)


if __name__ == "__main__":
    _child()
