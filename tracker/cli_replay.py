"""`tracker replay [--check]`: progress on a terminal, one summary line, drift listed."""

from __future__ import annotations

import asyncio
import sys

from tracker.config import Settings
from tracker.http.app import connect
from tracker.store.replay import Outcome, ReplayBusy, replay


def run(settings: Settings, url: str, *, check: bool) -> int:
    async def go() -> Outcome:
        database = await connect(url, settings)  # migrated, so the tables exist
        await database.close()
        return await replay(url, check=check, progress=_progress if sys.stderr.isatty() else None)

    try:
        outcome = asyncio.run(go())
    except ReplayBusy as busy:
        print(f"replay: {busy}", file=sys.stderr)
        return 2
    if sys.stderr.isatty():
        print(file=sys.stderr)
    rows = ", ".join(f"{count:,} {name}" for name, count in outcome.rows.items())
    done = f"{outcome.events:,} events in {outcome.seconds:.2f} s ({outcome.rate:,.0f} events/s)"
    if not check:
        pause = f"ingestion paused {outcome.pause_ms:.1f} ms for the swap"
        print(f"replay: rebuilt {done}: {rows}; {pause}")
        return 0
    for line in outcome.drift:
        print(f"drift: {line}")
    if outcome.drift:
        count = len(outcome.drift)
        print(f"check: {count} differences between the live projections and a replay of {done}")
        return 1
    print(f"check: no drift; replayed {done}: {rows}")
    return 0


def _progress(done: int, total: int, seconds: float) -> None:
    rate = done / seconds if seconds else 0.0
    share = f" ({done / total:.0%})" if total else ""
    print(
        f"\rreplaying: {done:,}/{total:,} events{share}, {rate:,.0f} events/s",
        end="",
        file=sys.stderr,
        flush=True,
    )
