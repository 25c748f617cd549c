"""`tracker readmit [--since TIME] [--dry-run]`: bring back refused deliveries that pass today."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from tracker.cli.common import EXIT_CODES, OK, database
from tracker.cli.table import shown, when
from tracker.config import Settings
from tracker.store.readmit import Verdict, readmit


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    command = commands.add_parser(
        "readmit",
        parents=[common],
        help="append refused deliveries that today's models accept",
        description="Decode every refused delivery (GET /v1/rejected) again with today's models "
        "and append, in the order they were refused, those that now pass: each keeps its "
        "original received_at and refers to its rejected row (readmitted_from). Each is "
        "judged like any delivery, whatever order it comes in: by what it says, against its "
        "own sub-operation; a result counts in its own rollout even when the device has moved "
        "on. A delivery is readmitted once; running this again appends nothing.",
        epilog=EXIT_CODES,
    )
    command.add_argument(
        "--since",
        type=iso_time,
        metavar="TIME",
        help="only deliveries received at or after this time (ISO 8601; UTC if no offset)",
    )
    command.add_argument(
        "--dry-run",
        action="store_true",
        help="append nothing: list what would pass, and why the rest still fails",
    )
    command.set_defaults(run=run, log_default="WARNING")


def iso_time(text: str) -> datetime:
    """An ISO 8601 time (argparse type); UTC when it says no offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-27 or 2026-11-27T08:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(settings: Settings, args: argparse.Namespace) -> int:
    since: datetime | None = args.since
    dry_run: bool = args.dry_run

    async def work() -> tuple[int, int]:
        passed = failed = 0
        async with database(settings) as db:
            async for verdict in readmit(db, since, dry_run=dry_run):
                print(_line(verdict, dry_run))
                if verdict.event is None:
                    failed += 1
                else:
                    passed += 1
        return passed, failed

    passed, failed = asyncio.run(work())
    verb = "would readmit" if dry_run else "readmitted"
    print(f"readmit: {verb} {passed:,}; {failed:,} still refused")
    return OK


def _line(verdict: Verdict, dry_run: bool) -> str:
    head = f"rejected #{verdict.rejected_id} (received {when(verdict.received_at)})"
    event = verdict.event
    if event is None:
        return f"{head}: still refused: {shown(verdict.reason or '')}"
    what = f"{shown(event.event_type)} for {event.stream_type} {shown(event.stream_id)!r}"
    if dry_run:
        return f"{head}: passes: {what}"
    return f"{head}: readmitted at position {verdict.position}: {what}"
