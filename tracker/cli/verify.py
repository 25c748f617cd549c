"""`tracker verify`: recompute every stream's hash chain; exit 1 if any event breaks it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tracker.cli.common import EXIT_CODES, FAILED, OK, database_url
from tracker.config import Settings
from tracker.store.verify import NotVerifiable, verify


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    command = commands.add_parser(
        "verify",
        parents=[common],
        help="check that no logged event was altered, removed or reordered",
        description="Recompute every stream's hash chain (each event's hash covers the "
        "previous hash of its stream and its exact bytes) and name every event that breaks "
        "it: a body altered, an event removed or reordered within its stream. Exit 1 if any "
        "does. Not detected: the last events of a stream removed, or a whole stream; an "
        "event's times, stream or type changed; a stream's chain rewritten consistently. "
        "Read-only: it never migrates or writes, and runs as a role that may only SELECT.",
        epilog=EXIT_CODES,
    )
    command.set_defaults(run=run, log_default="WARNING")


def run(settings: Settings, _: argparse.Namespace) -> int:
    # The database as it is: verify never migrates, and reads in read-only transactions only.
    url = database_url(settings)
    try:
        verdict = asyncio.run(verify(url, _progress if sys.stderr.isatty() else None))
    except NotVerifiable as why:
        print(f"verify: {why}", file=sys.stderr)
        return FAILED
    if sys.stderr.isatty() and verdict.events >= 100_000:
        print(file=sys.stderr)
    for broken in verdict.breaks:
        print(
            f"tampered: position {broken.position} ({broken.stream_type} "
            f"{broken.stream_id!r}): {broken.reason}"
        )
    counted = f"{verdict.events:,} events in {verdict.streams:,} streams"
    if verdict.breaks:
        print(f"verify: {len(verdict.breaks)} of {counted} break their stream's hash chain")
        return FAILED
    print(f"verify: {counted}; every hash chain is intact")
    return OK


def _progress(done: int) -> None:
    print(f"\rverifying: {done:,} events", end="", file=sys.stderr, flush=True)
