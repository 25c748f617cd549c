"""Rebuild every projection from the log, then swap it in (`replay`) or compare it (`--check`).

1. Stream the log through a server-side cursor into the domain's `Projection` (the fold that
   live ingestion uses), COPYing transitions out in batches and the rows at the end, into
   identical tables in a scratch schema (built by `tracker_create_projections`).
2. Catch up with what was appended meanwhile, without any lock.
3. Swap: take the append lock (ingestion waits), apply the last few events, replace the live
   tables by the rebuilt ones, commit. Ingestion pauses only for this step; it is measured.
   Check: no lock at all. The projections commit with the log, so one REPEATABLE READ
   snapshot shows the live tables exactly as of the log it shows; the rebuild catches up to
   that snapshot and is compared with the live tables inside it.

Memory holds one row per device track, task and operation membership, never the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tracker.domain.delivery import decode
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.store import progress as reported
from tracker.store.events import APPEND_LOCK, TAKE_APPEND_LOCK
from tracker.store.projections import write
from tracker.store.rows import (
    ALL_TABLES,
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    OPERATION_DEVICES,
    TASK_TRANSITIONS,
    TASKS,
    Table,
)

REPLAY_LOCK = 0x7472_6B72_706C  # "trkrpl": one replay or check at a time
REBUILD, CHECK = "tracker_rebuild", "tracker_check"  # scratch schemas
BATCH = 10_000
PROJECTED = "stream_type IN ('device', 'task')"
COUNT = f"SELECT count(*) FROM events WHERE {PROJECTED}"  # noqa: S608 - constants only
STREAM = f"SELECT position, received_at, raw FROM events WHERE {PROJECTED} ORDER BY position"  # noqa: S608
AFTER = (
    f"SELECT position, received_at, raw FROM events WHERE {PROJECTED} AND position > $1 "  # noqa: S608
    "ORDER BY position LIMIT $2"
)

Progress = Callable[[int, int, float], None]  # (events done, total, seconds so far)


@dataclass
class Outcome:
    events: int = 0
    seconds: float = 0.0
    pause_ms: float | None = None  # how long ingestion waited on the swap
    rows: dict[str, int] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)  # --check: one line per difference

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class ReplayBusy(Exception):  # noqa: N818 - reads as "replay busy"
    """Another replay or check holds the replay lock."""


async def replay(url: str, *, check: bool, progress: Progress | None = None) -> Outcome:
    """Rebuild all projections; swap them in, or with `check` compare them with the live ones."""
    started = time.monotonic()
    reader = await asyncpg.connect(url)
    writer = await asyncpg.connect(url)
    try:
        if not await writer.fetchval("SELECT pg_try_advisory_lock($1)", REPLAY_LOCK):
            raise ReplayBusy("another replay or check is running")
        live: str = await writer.fetchval("SELECT current_schema()")
        rebuild = _Rebuild(writer, CHECK if check else REBUILD, live)
        try:
            await rebuild.create_tables()
            await rebuild.stream_log(reader, progress)
            await rebuild.catch_up()
            if check:
                rebuild.outcome.drift = await rebuild.compare()
            else:
                rebuild.outcome.pause_ms = await rebuild.swap()
            drift = len(rebuild.outcome.drift) if check else None
            await reported.finish(writer, rebuild.outcome.events, rebuild.outcome.pause_ms, drift)
        finally:
            await writer.execute(f"DROP SCHEMA IF EXISTS {rebuild.shadow} CASCADE")
            await writer.execute("SELECT pg_advisory_unlock($1)", REPLAY_LOCK)
    finally:
        await reader.close()
        await writer.close()
    rebuild.outcome.seconds = time.monotonic() - started
    return rebuild.outcome


@dataclass
class _Rebuild:
    conn: asyncpg.Connection
    shadow: str  # the scratch schema the tables are rebuilt in
    live: str  # the schema of the live tables
    projection: Projection = field(default_factory=Projection)
    outcome: Outcome = field(default_factory=Outcome)
    last: int = 0  # the last log position folded in

    async def create_tables(self) -> None:
        await self.conn.execute(
            f"DROP SCHEMA IF EXISTS {self.shadow} CASCADE; CREATE SCHEMA {self.shadow}"
        )
        await self.conn.execute("SELECT tracker_create_projections($1)", self.shadow)

    async def stream_log(self, reader: asyncpg.Connection, progress: Progress | None) -> None:
        """Fold the whole log as of one snapshot; rows are COPYed in once, at the end."""
        started = time.monotonic()
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            total = await reader.fetchval(COUNT)
            await reported.start(self.conn, "check" if self.shadow == CHECK else "replay", total)
            async for row in reader.cursor(STREAM, prefetch=BATCH):
                self._apply(row)
                if self.outcome.events % BATCH == 0:
                    await self._flush_transitions()
                    await reported.advance(self.conn, self.outcome.events)
                    if progress:
                        progress(self.outcome.events, total, time.monotonic() - started)
        await self._flush_transitions()
        if progress:
            progress(self.outcome.events, self.outcome.events, time.monotonic() - started)
        for table, rows in self._rows():
            await self._copy(table, rows)
        self.projection.take_changes()  # every row is written: from here on, only changes

    async def catch_up(self) -> None:
        """Fold what was appended since (complete up to what this connection can see)."""
        while rows := await self.conn.fetch(AFTER, self.last, BATCH):
            for row in rows:
                self._apply(row)
            await self._write_changes()
        for table, items in self._rows():
            self.outcome.rows[table.name] = len(items)

    async def swap(self) -> float:
        """Replace the live tables by the rebuilt ones; return how long ingestion waited (ms)."""
        asked = time.monotonic()
        async with self.conn.transaction():
            await self.conn.execute("SET LOCAL lock_timeout = '10s'")
            await self.conn.execute(TAKE_APPEND_LOCK, APPEND_LOCK)  # ingestion waits from here...
            await self.catch_up()
            names = [t.name for t in ALL_TABLES]
            await self.conn.execute(f"DROP TABLE {', '.join(f'{self.live}.{n}' for n in names)}")
            for name in names:
                await self.conn.execute(f"ALTER TABLE {self.shadow}.{name} SET SCHEMA {self.live}")
        return (time.monotonic() - asked) * 1000  # ...to here

    async def compare(self) -> list[str]:
        async with self.conn.transaction(isolation="repeatable_read"):
            await self.catch_up()
            drift: list[str] = []
            for table in ALL_TABLES:
                drift += await self._differences(table)
        return drift

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

    def _apply(self, row: asyncpg.Record) -> None:
        notification = decode(bytes(row["raw"])).notification
        if notification is not None:
            self.projection.apply(Recorded(row["position"], row["received_at"], notification))
        self.last = row["position"]
        self.outcome.events += 1

    async def _flush_transitions(self) -> None:
        device, task = self.projection.take_transitions()
        await self._copy(DEVICE_TRANSITIONS, device)
        await self._copy(TASK_TRANSITIONS, task)

    async def _write_changes(self) -> None:
        changes = self.projection.take_changes()
        self._count(DEVICE_TRANSITIONS, len(changes.device_transitions))
        self._count(TASK_TRANSITIONS, len(changes.task_transitions))
        await write(self.conn, changes, self.shadow)

    def _rows(self) -> list[tuple[Table[Any], list[Any]]]:
        return [
            (DEVICE_TRACKS, list(self.projection.tracks.values())),
            (OPERATION_DEVICES, list(self.projection.members.values())),
            (TASKS, list(self.projection.tasks.values())),
        ]

    async def _copy(self, table: Table[Any], items: list[Any]) -> None:
        if table.append_only:
            self._count(table, len(items))
        if items:
            await self.conn.copy_records_to_table(
                table.name,
                records=[table.to_row(item) for item in items],
                columns=table.column_names,
                schema_name=self.shadow,
            )

    def _count(self, table: Table[Any], added: int) -> None:
        self.outcome.rows[table.name] = self.outcome.rows.get(table.name, 0) + added
