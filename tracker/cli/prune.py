"""`tracker prune-rejected --before TIME`: bound the refusals table, and say what went."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

from tracker.cli.common import EXIT_CODES, OK, database
from tracker.cli.readmit import iso_time
from tracker.cli.table import when
from tracker.config import Settings
from tracker.store import rejected


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    command = commands.add_parser(
        "prune-rejected",
        parents=[common],
        help="delete refused deliveries received before a time",
        description="Delete the refused deliveries (GET /v1/rejected) received before TIME, "
        "and say how many, which ids and how many bytes went. This is the one way rows leave "
        "that table; the log itself is never pruned. Readmit first what you want to keep.",
        epilog=EXIT_CODES,
    )
    command.add_argument(
        "--before",
        type=iso_time,
        required=True,
        metavar="TIME",
        help="ISO 8601; UTC if no offset is given",
    )
    command.set_defaults(run=run, log_default="WARNING")


def run(settings: Settings, args: argparse.Namespace) -> int:
    before: datetime = args.before

    async def work() -> rejected.Pruned:
        async with database(settings) as db:
            return await rejected.prune(db, before)

    pruned = asyncio.run(work())
    if pruned.rows == 0:
        print(f"prune-rejected: nothing received before {when(before)}")
        return OK
    print(
        f"prune-rejected: removed {pruned.rows:,} refused deliveries received before "
        f"{when(before)} (ids {pruned.first}..{pruned.last}, {pruned.bytes:,} bytes kept of them)"
    )
    return OK
