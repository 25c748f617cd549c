"""`tracker prune-unrecognised --before TIME --archive FILE`: archive the bodies of old
unrecognised events, then remove them from the log, which stays verifiable (store/prune.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from tracker.cli.common import EXIT_CODES, FAILED, OK, database
from tracker.cli.readmit import iso_time
from tracker.cli.table import when
from tracker.config import Settings
from tracker.store import prune


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    command = commands.add_parser(
        "prune-unrecognised",
        parents=[common],
        help="archive, then remove, the bodies of unrecognised events received before a time",
        description="Write every unrecognised event (a body of no type this tracker projects) "
        "received before TIME to FILE, one line each as `tracker export` writes them (bodies "
        "exact), fsync it, then remove those bodies from the log in one transaction. Their "
        "positions, fields and hashes stay, so `tracker verify` and checkpoints taken before "
        "still pass; `tracker verify --archive FILE` recomputes their links from the archive. "
        "Needs the role that owns the log. Recognised events are never pruned.",
        epilog=EXIT_CODES,
    )
    command.add_argument(
        "--before",
        type=iso_time,
        required=True,
        metavar="TIME",
        help="ISO 8601; UTC if no offset is given",
    )
    command.add_argument(
        "--archive",
        type=Path,
        required=True,
        metavar="FILE",
        help="where the bodies go (JSON lines); must not exist: an archive is never overwritten",
    )
    command.set_defaults(run=run, log_default="WARNING")


def run(settings: Settings, args: argparse.Namespace) -> int:
    before: datetime = args.before
    archive: Path = args.archive.resolve()
    if archive.exists():
        print(f"prune-unrecognised: {archive} exists; name a new archive", file=sys.stderr)
        return FAILED

    async def work() -> prune.Pruned:
        async with database(settings) as db:  # migrated, so the log can hold pruned bodies
            # A connection of its own: the pool's bounds every statement by TRACKER_DB_TIMEOUT
            # (5 s), and emptying 200,000 bodies takes longer than that.
            conn = await asyncpg.connect(db.url)
            try:
                return await prune.prune(conn, before, archive)
            finally:
                await conn.close()

    try:
        pruned = asyncio.run(work())
    except prune.NotAllowed as refused:
        print(f"prune-unrecognised: {refused}", file=sys.stderr)
        return FAILED
    if pruned.events == 0:
        print(f"prune-unrecognised: nothing received before {when(before)}; no archive written")
        return OK
    print(
        f"prune-unrecognised: archived {pruned.events:,} unrecognised bodies received before "
        f"{when(before)} (positions {pruned.first}..{pruned.last}, {pruned.bytes:,} bytes) to "
        f"{pruned.archive} (sha256 {pruned.archive_sha256}) and removed them from the log"
    )
    return OK
