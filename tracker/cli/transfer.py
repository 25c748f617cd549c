"""`tracker export` and `tracker import`: the log as JSON lines, out and back in.

A line is `{"position", "received_at", "stream_type", "stream_id", "event_type", "occurred_at",
"readmitted_from", "body"}`, `body` being the delivery's exact text (null, with `"pruned": true`,
for an unrecognised body pruned to an archive: `tracker prune-unrecognised`). Import also takes bare
platform notifications, one per line (received now). Everything goes through the same
validation and the same append-and-project path as HTTP ingestion, in batches (one transaction
each), and keeps the exported `received_at` and `readmitted_from`, so exporting and importing
into an empty database gives the same log and the same projections.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

import asyncpg
import orjson

from tracker.cli.common import EXIT_CODES, FAILED, OK, database
from tracker.config import Settings
from tracker.domain.delivery import NewEvent, Refusal, decode, decode_written
from tracker.store import events, feed, ingestion
from tracker.store.database import Database
from tracker.store.errors import CONTENT
from tracker.store.rows import ALL_TABLES

BATCH = 1000


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    export = commands.add_parser(
        "export",
        parents=[common],
        help="write the event log as JSON lines (streamed)",
        description="Write every event after --after as one JSON line to standard output.",
        epilog=EXIT_CODES,
    )
    export.add_argument("--after", type=int, default=0, help="start after this log position")
    export.set_defaults(run=_export)

    imported = commands.add_parser(
        "import",
        parents=[common],
        help="append JSON lines (an export, or bare notifications) through validation",
        description="Append each line of FILE (- for standard input): an exported event, or a "
        "bare platform notification. Lines that fail validation are reported and skipped; the "
        "exit code is then 1.",
        epilog=EXIT_CODES,
    )
    imported.add_argument("file", metavar="FILE", help="JSON lines, or - for standard input")
    imported.set_defaults(run=_import)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        count = 0
        out = sys.stdout.buffer
        async with database(settings) as db, db.pool.acquire() as conn:
            async for event in events.stream(conn, args.after):
                out.write(events.export_line(event))
                count += 1
        out.flush()
        print(f"export: {count:,} events", file=sys.stderr)
        return OK

    return asyncio.run(work())


@dataclass
class _Tally:
    appended: int = 0
    refused: list[str] = field(default_factory=list)
    first: int | None = None
    last: int | None = None


def _import(settings: Settings, args: argparse.Namespace) -> int:
    source: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115, PTH123
    started, tally = time.monotonic(), _Tally()

    async def work() -> None:
        async with database(settings) as db:
            batch: list[_Line] = []
            for number, line in enumerate(source, 1):
                item = _item(number, line, tally)
                if item is not None:
                    batch.append(_Line(number, *item))
                if len(batch) >= BATCH:
                    await _append(db, batch, tally)
                    batch = []
                    _progress(tally, started)
            await _append(db, batch, tally)
            if tally.appended:
                await _analyse(db)

    try:
        asyncio.run(work())
    finally:
        source.close()
    if sys.stderr.isatty() and tally.appended >= BATCH:
        print(file=sys.stderr)
    for reason in tally.refused:
        print(f"refused: {reason}", file=sys.stderr)
    seconds = time.monotonic() - started
    span = f" (positions {tally.first}..{tally.last})" if tally.first is not None else ""
    rate = tally.appended / seconds if seconds else 0.0
    print(
        f"import: {tally.appended:,} events appended{span}, {len(tally.refused):,} lines refused, "
        f"in {seconds:.2f} s ({rate:,.0f} events/s)"
    )
    return FAILED if tally.refused else OK


def _item(number: int, line: bytes, tally: _Tally) -> tuple[NewEvent, datetime, bool] | None:
    """One line as (event, received_at, exported), or None (blank, or refused and tallied)."""
    text = line.strip()
    if not text:
        return None
    raw, received_at, exported = text, datetime.now(UTC), False
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = None  # decode() will say precisely what is wrong
    if isinstance(document, dict) and document.get("pruned") is True:
        # An export of a pruned event has no body: taken as a bare notification, the line
        # itself would be logged. Its body is in the archive it was pruned to.
        position = document.get("position")
        tally.refused.append(
            f"line {number}: the body of position {position} was pruned; import its line from "
            "the archive written by tracker prune-unrecognised instead"
        )
        return None
    if (
        isinstance(document, dict)
        and isinstance(document.get("body"), str)
        and "received_at" in document
    ):
        try:
            received_at = datetime.fromisoformat(document["received_at"])
        except (TypeError, ValueError):
            tally.refused.append(f"line {number}: received_at is not an RFC 3339 time")
            return None
        raw, exported = document["body"].encode("utf-8"), True
    event_type = document.get("event_type") if isinstance(document, dict) else None
    try:
        event = decode_written(event_type, raw) if isinstance(event_type, str) else decode(raw)
    except Refusal as refusal:
        tally.refused.append(f"line {number}: {refusal.code}: {refusal.message}")
        return None
    readmitted = document.get("readmitted_from") if isinstance(document, dict) else None
    if isinstance(readmitted, int) and not isinstance(readmitted, bool):
        event = replace(event, readmitted_from=readmitted)  # judged by its original time
    return event, received_at, exported


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    event: NewEvent
    received_at: datetime
    exported: bool  # a line of `tracker export` (history, its alerts' changes included)


async def _append(db: Database, batch: list[_Line], tally: _Tally) -> None:
    """One transaction for the batch. A line the database refuses (a value past a column's
    limits) is refused alone, as HTTP ingestion does: the batch is halved around it."""
    if not batch:
        return
    try:
        async with db.transaction("import") as conn:
            positions = await ingestion.ingest(
                conn,
                [line.event for line in batch],
                [line.received_at for line in batch],
                restoring=True,  # another log's times and links, kept as exported
                # New deliveries (bare lines) are watched by the guards like any; an export
                # brings its alerts' changes with it, which deciding again would repeat.
                decide=not any(line.exported for line in batch),
            )
    except CONTENT as error:
        if len(batch) == 1:
            refused = f"{type(error).__name__}: {error}"
            tally.refused.append(f"line {batch[0].number}: unstorable: {refused}")
            return
        middle = len(batch) // 2
        await _append(db, batch[:middle], tally)
        await _append(db, batch[middle:], tally)
        return
    if ingestion.projected([line.event for line in batch]):
        await feed.announce(db)  # after the commit: live feeds show the imported transitions
    tally.appended += len(positions)
    tally.first = positions[0] if tally.first is None else tally.first
    tally.last = positions[-1]


async def _analyse(db: Database) -> None:
    """Statistics for what was just loaded. Without them (autovacuum off, or not yet round),
    list pages took 440-500 ms instead of 5-7 ms after importing 4.8M events, one device
    42 ms instead of 2 (issue 21)."""
    tables = ", ".join(["events", *(table.name for table in ALL_TABLES)])
    conn = await asyncpg.connect(db.url)  # of its own: no statement timeout on a large log
    try:
        await conn.execute(f"ANALYZE {tables}")
    finally:
        await conn.close()


def _progress(tally: _Tally, started: float) -> None:
    if sys.stderr.isatty():
        rate = tally.appended / (time.monotonic() - started)
        done = f"{tally.appended:,} appended, {len(tally.refused):,} refused"
        print(f"\rimporting: {done}, {rate:,.0f}/s", end="", file=sys.stderr, flush=True)
