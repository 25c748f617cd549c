"""Replay: load N fleet events through `tracker import`, then time `tracker replay` as an operator
runs it (its own process: wall time, events/s, peak RSS), against a plain sequential read of the
same log through an asyncpg server-side cursor, measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.load import median
from bench.postgres import count_events
from bench.processes import Measured
from bench.procfs import tree_memory_mb

PROGRESS_EVERY = 10.0  # seconds between progress lines while loading
RSS_EVERY = 0.05  # seconds between samples of the replay's memory
SEQUENTIAL = "SELECT position, received_at, event_type, raw FROM events ORDER BY position"
REPORTED = re.compile(r"([\d,]+) events in ([\d.]+) s")  # "rebuilt 1,000 events in 0.09 s"
PAUSED = re.compile(r"ingestion paused ([\d.]+) ms")  # "ingestion paused 9.6 ms for the swap"


@dataclass(frozen=True, slots=True)
class ReplayRun:
    events: int
    seconds: float  # wall time of the `tracker replay` process, start to exit
    rate: float  # events / seconds
    reported_rate: float | None  # what the command itself printed, if it did
    peak_rss_mb: float  # the most its process tree held at once (sampled): the target's figure
    largest_process_mb: float  # the largest high-water mark (VmHWM) of one process of the tree
    cpu_seconds: float  # the whole tree's
    pause_ms: float | None = None  # how long ingestion waited for the swap, as it reported


@dataclass(frozen=True, slots=True)
class Replay:
    events: int
    load_seconds: float
    baseline_rates: list[float]  # sequential read, events/s, once per run
    runs: list[ReplayRun]

    @property
    def rate(self) -> float:
        return median([r.rate for r in self.runs])

    @property
    def baseline(self) -> float:
        return median(self.baseline_rates)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)


def tracker_env(url: str) -> dict[str, str]:
    return {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": "WARNING"}


async def load(url: str, lines: Path, expected: int) -> float:
    """`tracker import` of `lines`, printing progress from the log's row count."""
    importer = Measured([sys.executable, "-m", "tracker", "import", str(lines)], tracker_env(url))
    started = time.monotonic()
    while importer.poll() is None:
        await asyncio.sleep(min(PROGRESS_EVERY, 1.0 + (time.monotonic() - started) / 4))
        if importer.poll() is None:
            done, seconds = await count_events(url), time.monotonic() - started
            print(f"  loading: {done:,}/{expected:,} events, {done / seconds:,.0f}/s", flush=True)
    importer.wait().check("tracker import")
    return time.monotonic() - started


async def sequential_read(url: str) -> float:
    """Events/s of reading the whole log in order, as a replay must, and doing nothing else."""
    conn = await asyncpg.connect(url)
    try:
        started, count = time.monotonic(), 0
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            async for _ in conn.cursor(SEQUENTIAL, prefetch=10_000):
                count += 1
        return count / (time.monotonic() - started)
    finally:
        await conn.close()


def replay_once(url: str, events: int) -> ReplayRun:
    """`tracker replay`, sampling its process tree's memory while it runs (it may fan out)."""
    replaying = Measured([sys.executable, "-m", "tracker", "replay"], tracker_env(url))
    peak = largest = 0.0
    while (finished := replaying.poll()) is None:
        now, high = tree_memory_mb(replaying.process.pid)
        peak, largest = max(peak, now), max(largest, high)
        time.sleep(RSS_EVERY)
    finished.check("tracker replay")
    match = REPORTED.search(finished.stdout)
    reported = None
    if match:
        events = int(match[1].replace(",", ""))
        reported = events / float(match[2]) if float(match[2]) else None
    return ReplayRun(
        events=events,
        seconds=finished.seconds,
        rate=events / finished.seconds,
        reported_rate=reported,
        peak_rss_mb=max(peak, largest),
        largest_process_mb=largest,
        cpu_seconds=finished.cpu_seconds,
        pause_ms=float(paused[1]) if (paused := PAUSED.search(finished.stdout)) else None,
    )


async def measure(url: str, lines: Path, expected: int, runs: int) -> Replay:
    load_seconds = await load(url, lines, expected)
    events = await count_events(url)
    print(f"  loaded {events:,} events in {load_seconds:.1f} s ({events / load_seconds:,.0f}/s)")
    baseline, replays = [], []
    for number in range(1, runs + 1):
        baseline.append(await sequential_read(url))
        replays.append(await asyncio.to_thread(replay_once, url, events))
        last = replays[-1]
        print(
            f"  replay {number}/{runs}: {last.rate:,.0f} events/s ({last.seconds:.1f} s wall, "
            f"peak RSS {last.peak_rss_mb:,.0f} MB, largest process {last.largest_process_mb:,.0f}"
            f" MB, CPU {last.cpu_seconds:.1f} s); sequential read {baseline[-1]:,.0f} events/s",
            flush=True,
        )
    return Replay(events, load_seconds, baseline, replays)
