"""Rebuild every projection from the log, then swap it in (`replay`) or compare it (`--check`).

1. Fold the whole log as of one exported snapshot into identical tables in a scratch schema
   (built by `tracker_create_projections`, keys only), stream by stream, split across
   processes when it is large (`rebuild.py`); then recount the rollups from the memberships.
2. Replay only: build the other indexes (`tracker_index_projections`) on the full tables.
3. Catch up with what was appended meanwhile, without any lock, through the path live
   ingestion takes: load the rows the events touch, fold, write back set-wise. Again until
   little is left, then ANALYZE, so the swapped-in tables come with planner statistics.
4. Swap: take the append lock exclusive (ingestion waits for it, and it for the appends in
   flight), apply the last few events, move the live tables out and the rebuilt ones in
   (renames only), commit; drop the old ones afterwards. Ingestion pauses only for this step,
   whatever the size of the tables; it is measured.
   Check: no lock at all. The projections commit with the log, so one REPEATABLE READ
   snapshot shows the live tables exactly as of the log it shows; the rebuild catches up to
   that snapshot and is compared with the live tables inside it.

Appends run side by side, so the fold and each catch-up stop at the log's horizon
(horizon.py): an event below the last one folded can still commit, and must not be passed.
Inside the swap (no append in flight) and the check's snapshot (the live tables show exactly
the events it shows, and each stream's visible events are a prefix of it) every visible
event is folded.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tracker.store import bodies, horizon, projections
from tracker.store import progress as reported
from tracker.store.events import APPEND_LOCK, TAKE_APPEND_LOCK
from tracker.store.rebuild import (
    BATCH,
    LOGGED,
    PROJECTED,
    RECOUNT,
    Plan,
    cut,
    fold_log,
    peak_rss_mb,
    recorded,
)
from tracker.store.rows import ALL_TABLES
from tracker.store.table import Table

REPLAY_LOCK = 0x7472_6B72_706C  # "trkrpl": one replay or check at a time
REBUILD, CHECK, RETIRED = "tracker_rebuild", "tracker_check", "tracker_retired"  # scratch schemas
# The snapshot's size, and where the catch-up starts (constants only in these strings).
EXTENT = f"SELECT count(*) FROM events WHERE {PROJECTED} AND position <= $1"  # noqa: S608
SPLIT_FROM = 200_000  # events: below this, starting processes costs more than it saves
AFTER = f"{LOGGED} AND position > $1 AND position <= $3 ORDER BY position LIMIT $2"
ALL_AFTER = f"{LOGGED} AND position > $1 ORDER BY position LIMIT $2"  # every visible one
CAUGHT_UP = 200  # events left to apply under the lock at most, if ingestion lets us
PASSES = 20  # catch-up passes at most before the swap, however fast the appends come
STATISTICS = "SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = $1::regnamespace"
COMPARE_MEMORY = "256MB"  # PostgreSQL's, per hash while --check compares

ProgressCallback = Callable[[int, int, float], None]  # (events done, total, seconds so far)


@dataclass
class Outcome:
    events: int = 0
    seconds: float = 0.0
    pause_ms: float | None = None  # how long ingestion waited on the swap
    parts: int = 1  # processes the fold was split across
    peak_rss_mb: float = 0.0  # this process's peak plus each child partition process's
    rows: dict[str, int] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)  # --check: one line per difference
    phases: dict[str, float] = field(default_factory=dict)  # seconds, in the order they ran

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.monotonic() - began

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class ReplayBusy(Exception):  # noqa: N818 - reads as "replay busy"
    """Another replay or check holds the replay lock."""


async def replay(
    url: str, *, check: bool, progress: ProgressCallback | None = None, parts: int | None = None
) -> Outcome:
    """Rebuild all projections; swap them in, or with `check` compare them with the live ones.

    `parts`: processes to split the fold across; by default one per core for a large log.
    """
    started = time.monotonic()
    writer = await asyncpg.connect(url)
    try:
        if not await writer.fetchval("SELECT pg_try_advisory_lock($1)", REPLAY_LOCK):
            raise ReplayBusy("another replay or check is running")
        live: str = await writer.fetchval("SELECT current_schema()")
        rebuild = _Rebuild(writer, CHECK if check else REBUILD, live)
        try:
            await writer.execute(f"DROP SCHEMA IF EXISTS {RETIRED} CASCADE")  # a crash's leftovers
            await rebuild.create_tables()
            phase = rebuild.outcome.phase
            with phase("fold"):
                await rebuild.fold_snapshot(url, parts, progress, started)
            side_by_side = parts or min(os.cpu_count() or 1, 4)
            with phase("recount"):
                await writer.execute(RECOUNT.format(s=rebuild.shadow))
            if check:
                with phase("compare"):
                    await rebuild.catch_up()
                    rebuild.outcome.drift = await rebuild.compare()
            else:
                with phase("index"):
                    indexes = await writer.fetch(
                        "SELECT tracker_projection_indexes($1)", rebuild.shadow
                    )
                    await _side_by_side(url, [row[0] for row in indexes], side_by_side)
                with phase("catch up"):
                    await rebuild.settle()
                with phase("analyze"):
                    analyze = [f"ANALYZE {rebuild.shadow}.{table.name}" for table in ALL_TABLES]
                    await _side_by_side(url, analyze, side_by_side)
                with phase("catch up"):  # what arrived during ANALYZE: not under the lock
                    await rebuild.settle()
                with phase("swap"):
                    rebuild.outcome.pause_ms = await rebuild.swap()
                with phase("drop old"):
                    await writer.execute(f"DROP SCHEMA IF EXISTS {RETIRED} CASCADE")
                await rebuild.count_rows(live)
            drift = len(rebuild.outcome.drift) if check else None
            await reported.finish(writer, rebuild.outcome.events, rebuild.outcome.pause_ms, drift)
        finally:
            await writer.execute(f"DROP SCHEMA IF EXISTS {rebuild.shadow} CASCADE")
            await writer.execute("SELECT pg_advisory_unlock($1)", REPLAY_LOCK)
    finally:
        await writer.close()
    rebuild.outcome.seconds = time.monotonic() - started
    rebuild.outcome.peak_rss_mb += peak_rss_mb()
    return rebuild.outcome


async def _side_by_side(url: str, statements: list[str], connections: int) -> None:
    """Run independent statements (index builds, ANALYZE) on several connections at once:
    each is one backend's work, and the machine has more than one core."""
    waiting = list(statements)

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            while waiting:
                await conn.execute(waiting.pop(0))
        finally:
            await conn.close()

    await asyncio.gather(*(run() for _ in range(max(1, min(connections, len(waiting))))))


def default_parts(events: int) -> int:
    return min(os.cpu_count() or 1, 4) if events >= SPLIT_FROM else 1


@dataclass
class _Rebuild:
    conn: asyncpg.Connection
    shadow: str  # the scratch schema the tables are rebuilt in
    live: str  # the schema of the live tables
    outcome: Outcome = field(default_factory=Outcome)
    last: int = 0  # the last log position folded in

    async def create_tables(self) -> None:
        await self.conn.execute(
            f"DROP SCHEMA IF EXISTS {self.shadow} CASCADE; CREATE SCHEMA {self.shadow}"
        )
        # Check's tables are thrown away: UNLOGGED, they cost no WAL.
        await self.conn.execute(
            "SELECT tracker_create_projections($1, $2)", self.shadow, self.shadow == CHECK
        )

    async def fold_snapshot(
        self, url: str, parts: int | None, progress: ProgressCallback | None, started: float
    ) -> None:
        """Fold the log as of one snapshot, exported so every partition sees the same one."""
        reader = await asyncpg.connect(url)
        try:
            self.last = await horizon.read(reader)  # before the snapshot
            async with reader.transaction(isolation="repeatable_read", readonly=True):
                snapshot: str = await reader.fetchval("SELECT pg_export_snapshot()")
                total: int = await reader.fetchval(EXTENT, self.last)
                mode = "check" if self.shadow == CHECK else "replay"
                await reported.start(self.conn, mode, total)
                bounds = await cut(reader, total, parts or default_parts(total))
                plan = Plan(url, snapshot, self.shadow, bounds, self.last)
                reports = _Reports(self.conn, total, progress, started)
                folded = await fold_log(plan, reports)
                await reports(sum(f.events for f in folded), final=True)
        finally:
            await reader.close()
        self.outcome.events, self.outcome.parts = sum(f.events for f in folded), plan.parts
        # The first partition is folded in this process, counted with it by `replay`.
        self.outcome.peak_rss_mb = sum(f.peak_rss_mb for f in folded[1:])

    async def settle(self) -> None:
        """Catch up pass after pass until a pass finds little (`CAUGHT_UP`): what is left then
        is folded under the swap's lock. Each pass stops at the horizon as it began, so it
        ends however fast appends come; after `PASSES`, the swap folds whatever is left."""
        for _ in range(PASSES):
            if await self.catch_up() <= CAUGHT_UP:
                return

    async def catch_up(self, *, visible: bool = False) -> int:
        """Fold what was appended since, up to the horizon as it is now (`visible`: every event
        this connection's snapshot shows, only where no append can still commit below the last
        one: inside the swap's lock or the check's snapshot); return how many events that was."""
        done = 0
        last = None if visible else await horizon.read(self.conn)
        while rows := await self._after(last):
            await bodies.ready(self.conn, {row["codec"] for row in rows})
            events = [event for row in rows if (event := recorded(row)) is not None]
            async with self.conn.transaction():
                await projections.apply(self.conn, events, self.shadow)
            self.last = rows[-1]["position"]
            done += len(rows)
        self.outcome.events += done
        return done

    async def _after(self, until: int | None) -> list[asyncpg.Record]:
        if until is None:
            return await self.conn.fetch(ALL_AFTER, self.last, BATCH)
        return await self.conn.fetch(AFTER, self.last, BATCH, until)

    async def count_rows(self, schema: str) -> None:
        for table in ALL_TABLES:
            self.outcome.rows[table.name] = await self.conn.fetchval(
                f"SELECT count(*) FROM {schema}.{table.name}"  # noqa: S608 - identifiers
            )

    async def swap(self) -> float:
        """Replace the live tables by the rebuilt ones; return how long ingestion waited (ms).

        Renames only (tables and their indexes change schema): nothing here grows with the
        tables' size but the last few events' catch-up. The old tables are dropped after.
        """
        asked = time.monotonic()
        async with self.conn.transaction():
            await self.conn.execute("SET LOCAL lock_timeout = '10s'")
            await self.conn.execute(TAKE_APPEND_LOCK, APPEND_LOCK)  # ingestion waits from here...
            await self.catch_up(visible=True)  # nothing in flight: every event is visible
            await self.conn.execute(f"CREATE SCHEMA {RETIRED}")
            for table in ALL_TABLES:
                await self.conn.execute(
                    f"ALTER TABLE {self.live}.{table.name} SET SCHEMA {RETIRED}"
                )
                await self.conn.execute(
                    f"ALTER TABLE {self.shadow}.{table.name} SET SCHEMA {self.live}"
                )
            # Extended statistics stay in their schema when their table moves: move them too.
            for schema, to in ((self.live, RETIRED), (self.shadow, self.live)):
                for name in await self.conn.fetch(STATISTICS, schema):
                    await self.conn.execute(f"ALTER STATISTICS {schema}.{name[0]} SET SCHEMA {to}")
            await self.conn.execute("SELECT tracker_grant_runtime()")  # new tables, same grants
        return (time.monotonic() - asked) * 1000  # ...to here

    async def compare(self) -> list[str]:
        async with self.conn.transaction(isolation="repeatable_read"):
            # Hash joins of whole tables: in memory rather than spilled to disk in batches.
            await self.conn.execute(f"SET LOCAL work_mem = '{COMPARE_MEMORY}'")
            await self.catch_up(visible=True)  # what the live tables in this snapshot show
            await self.count_rows(self.shadow)
            drift: list[str] = []
            for table in ALL_TABLES:
                if await self._any_difference(table):
                    drift += await self._differences(table)
        return drift

    async def _any_difference(self, table: Table[Any]) -> bool:
        """One pass over both tables: is any row missing from either, or different?"""
        keys = ", ".join(table.key)
        return bool(
            await self.conn.fetchval(
                f"SELECT EXISTS (SELECT FROM {self.live}.{table.name} live "  # noqa: S608
                f"FULL JOIN {self.shadow}.{table.name} rebuilt USING ({keys}) "
                "WHERE live IS DISTINCT FROM rebuilt)"
            )
        )

    async def _differences(self, table: Table[Any]) -> list[str]:
        """Rows that differ between live and rebuilt, by key, naming the columns that differ."""
        columns = ", ".join(table.column_names)
        only: dict[str, dict[tuple[Any, ...], asyncpg.Record]] = {}
        for side, left, right in (
            ("live", self.live, self.shadow),
            ("replay", self.shadow, self.live),
        ):
            rows = await self.conn.fetch(
                f"SELECT {columns} FROM {left}.{table.name} EXCEPT "  # noqa: S608 - identifiers
                f"SELECT {columns} FROM {right}.{table.name}"
            )
            only[side] = {tuple(row[k] for k in table.key): row for row in rows}
        lines = []
        for key in sorted(only["live"].keys() | only["replay"].keys(), key=repr):
            was, rebuilt = only["live"].get(key), only["replay"].get(key)
            where = f"{table.name} {dict(zip(table.key, key, strict=True))}"
            if was is None:
                lines.append(f"{where}: missing from the live table")
            elif rebuilt is None:
                lines.append(f"{where}: in the live table but not in the replay")
            else:
                changed = [c for c in table.column_names if was[c] != rebuilt[c]]
                shown = "; ".join(f"{c}: live {was[c]!r}, replay {rebuilt[c]!r}" for c in changed)
                lines.append(f"{where}: {shown}")
        return lines


class _Reports:
    """Progress from the fold (possibly several processes) to the terminal and replay_progress.

    The database row is written at most once per `BATCH` events, so it never slows the fold.
    """

    def __init__(
        self,
        conn: asyncpg.Connection,
        total: int,
        progress: ProgressCallback | None,
        started: float,
    ) -> None:
        self.conn, self.total, self.progress, self.started = conn, total, progress, started
        self.done = self.written = 0

    async def __call__(self, done: int, *, final: bool = False) -> None:
        if self.progress and done != self.done:
            self.progress(done, self.total, time.monotonic() - self.started)
        self.done = done
        if done - self.written >= BATCH or (final and done != self.written):
            await reported.advance(self.conn, done)
            self.written = done
