"""`tracker replay [--check]`: progress on a terminal, one summary line, drift listed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tracker.cli.common import EXIT_CODES, FAILED, OK, database
from tracker.config import Settings
from tracker.store.replay import Outcome, ReplayBusy, replay


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="rebuild every projection from the log and swap it in (ingestion keeps going)",
        description="Rebuild every projection from the event log into fresh tables and swap them "
        "in with one short transaction; the server keeps ingesting and answering meanwhile. "
        "With --check, rebuild into scratch space, compare with the live tables, print every "
        "difference and exit 1 if there is any.",
        epilog=EXIT_CODES,
    )
    replay.add_argument(
        "--check", action="store_true", help="compare with the live tables instead of swapping"
    )
    replay.add_argument(
        "--jobs",
        type=_positive,
        help="processes to split the rebuild across "
        "(default: one per core, up to 4, for logs of 200,000 events or more; else 1)",
    )
    replay.set_defaults(run=run, log_default="WARNING")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run(settings: Settings, args: argparse.Namespace) -> int:
    check: bool = args.check
    jobs: int | None = args.jobs

    async def go() -> Outcome:
        async with database(settings) as db:  # migrated, so the tables exist
            url = db.url
        shown = _progress if sys.stderr.isatty() else None
        return await replay(url, check=check, progress=shown, parts=jobs)

    try:
        outcome = asyncio.run(go())
    except ReplayBusy as busy:
        print(f"replay: {busy}", file=sys.stderr)
        return FAILED
    if sys.stderr.isatty():
        print(file=sys.stderr)
    rows = ", ".join(f"{count:,} {name}" for name, count in outcome.rows.items())
    done = (
        f"{outcome.events:,} events in {outcome.seconds:.2f} s ({outcome.rate:,.0f} events/s, "
        f"{outcome.parts} {'process' if outcome.parts == 1 else 'processes'}, "
        f"peak memory {outcome.peak_rss_mb:,.0f} MB)"
    )
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome.phases.items())
    if not check:
        pause = f"ingestion paused {outcome.pause_ms:.1f} ms for the swap"
        print(f"replay: rebuilt {done}: {rows}; {pause}")
        print(f"replay: time spent: {phases}", file=sys.stderr)
        return OK
    for line in outcome.drift:
        print(f"drift: {line}")
    if outcome.drift:
        count = len(outcome.drift)
        print(f"check: {count} differences between the live projections and a replay of {done}")
        return FAILED
    print(f"check: no drift; replayed {done}: {rows}")
    print(f"check: time spent: {phases}", file=sys.stderr)
    return OK


def _progress(done: int, total: int, seconds: float) -> None:
    rate = done / seconds if seconds else 0.0
    share = f" ({done / total:.0%})" if total else ""
    print(
        f"\rreplaying: {done:,}/{total:,} events{share}, {rate:,.0f} events/s",
        end="",
        file=sys.stderr,
        flush=True,
    )
