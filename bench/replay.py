"""Replay, and its swap pause under load.

Replay: `tracker replay` as an operator runs it, its own process (wall time, events/s, peak RSS
of its process tree), against a plain sequential read of the same log through an asyncpg
server-side cursor, measured in the same run.

Swap pause: `tracker replay` while 32 clients post to a real `tracker serve`. The replay reports
how long ingestion waited for its swap ("ingestion paused X ms for the swap"); the clients show
what that looked like from outside. Each client POSTs the next body as soon as the last one is
answered (closed loop, keep-alive, the ingest token) and times every answer, split into the
quiet seconds before each replay and the time the replay process runs.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import processes
from bench.ingest import INGEST_HEADERS, serving
from bench.load import median, percentile
from bench.postgres import connected, count_events
from bench.report import Line, met

PROGRESS_EVERY = 10.0  # seconds between progress lines while loading
SEQUENTIAL = "SELECT position, received_at, event_type, raw FROM events ORDER BY position"
REPORTED = re.compile(r"([\d,]+) events in ([\d.]+) s")  # "rebuilt 1,000 events in 0.09 s"
PAUSED = re.compile(r"ingestion paused ([\d.]+) ms")  # "ingestion paused 9.6 ms for the swap"
FULL = 1_000_000  # the replay targets are stated over a log this long
CLIENTS = 32
QUIET_SECONDS = 2.0  # before each replay: the clients' answers without one
WARMUP_SECONDS = 1.0  # not counted: connections opening, the server's first requests


@dataclass(frozen=True, slots=True)
class ReplayRun:
    events: int
    seconds: float  # wall time of the `tracker replay` process, start to exit
    rate: float  # events / seconds
    reported_rate: float | None  # what the command itself printed, if it did
    peak_rss_mb: float  # the most its process tree held at once (sampled): the target's figure
    largest_process_mb: float  # the largest high-water mark (VmHWM) of one process of the tree
    cpu_seconds: float  # the whole tree's
    pause_ms: float | None  # how long ingestion waited for the swap, as it reported


def replay_once(url: str, events: int) -> ReplayRun:
    ran = processes.tracker(url, "replay")
    if not ran.ok:
        raise RuntimeError(f"tracker replay exited with {ran.returncode}:\n{ran.errors}")
    said = REPORTED.search(ran.output)
    reported = int(said[1].replace(",", "")) / float(said[2]) if said and float(said[2]) else None
    paused = PAUSED.search(ran.output)
    return ReplayRun(
        events,
        ran.seconds,
        events / ran.seconds,
        reported,
        ran.peak_rss_mb,
        ran.largest_process_mb,
        ran.cpu_seconds,
        float(paused[1]) if paused else None,
    )


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


async def load(url: str, lines: Path, expected: int) -> float:
    """`tracker import` of `lines`, printing progress from the log's row count."""
    command = [sys.executable, "-m", "tracker", "import", str(lines)]
    importer = processes.Measured(command, processes.tracker_env(url))
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
    async with connected(url) as conn:
        started, count = time.monotonic(), 0
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            async for _ in conn.cursor(SEQUENTIAL, prefetch=10_000):
                count += 1
        return count / (time.monotonic() - started)


async def measure(url: str, lines: Path, expected: int, runs: int) -> Replay:
    load_seconds = await load(url, lines, expected)
    events = await count_events(url)
    print(f"  loaded {events:,} events in {load_seconds:.1f} s ({events / load_seconds:,.0f}/s)")
    baseline, replays = [], []
    for number in range(1, runs + 1):
        baseline.append(await sequential_read(url))
        replays.append(last := await asyncio.to_thread(replay_once, url, events))
        print(
            f"  replay {number}/{runs}: {last.rate:,.0f} events/s ({last.seconds:.1f} s wall, "
            f"peak RSS {last.peak_rss_mb:,.0f} MB, largest process {last.largest_process_mb:,.0f}"
            f" MB, CPU {last.cpu_seconds:.1f} s); sequential read {baseline[-1]:,.0f} events/s",
            flush=True,
        )
    return Replay(events, load_seconds, baseline, replays)


def lines(p: Replay) -> list[Line]:
    small = "" if p.events >= FULL else f"n/a ({p.events:,} < 1M events)"
    walls = ", ".join(f"{r.seconds:.1f}" for r in p.runs)
    reported = [r.reported_rate for r in p.runs if r.reported_rate]
    own = f"; it reports {reported[len(reported) // 2]:,.0f}/s" if reported else ""
    figure = f"{p.rate:,.0f} events/s over {p.events:,} (wall {walls} s{own})"
    ratio = p.rate / p.baseline if p.baseline else float("nan")
    largest = max(r.largest_process_mb for r in p.runs)
    return [
        Line("replay", figure, target="≥ 100,000 events/s", met=small or met(p.rate >= 100_000)),
        Line(
            "replay vs sequential read",
            figure,
            f"{p.baseline:,.0f} events/s (asyncpg cursor)",
            f"{ratio:.2f}",
            "≥ 0.33 (within 3x)",
            met(ratio >= 1 / 3),
        ),
        Line(
            "replay peak RSS (its process tree)",
            f"{p.peak_rss_mb:,.0f} MB (largest process {largest:,.0f} MB)",
            target="≤ 300 MB",
            met=small or met(p.peak_rss_mb <= 300),
        ),
    ]


@dataclass(frozen=True, slots=True)
class Answers:
    """Client-side latency of the POSTs of one phase, in ms."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Answers:
        ordered = [s * 1000 for s in sorted(seconds)]
        last = ordered[-1] if ordered else float("nan")
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 99), last)

    def summary(self) -> str:
        return (
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.0f} ms "
            f"({self.count:,} answers)"
        )


@dataclass(frozen=True, slots=True)
class Swaps:
    clients: int
    runs: list[ReplayRun]  # each replay under load, with the pause it reported
    quiet: Answers  # the clients' answers with no replay running
    replaying: Answers  # while a replay process was running (its swap included)
    failed: int  # POSTs answered other than 200, or not answered

    @property
    def pauses_ms(self) -> list[float]:
        return [r.pause_ms for r in self.runs if r.pause_ms is not None]

    @property
    def median_ms(self) -> float:
        return median(self.pauses_ms)

    @property
    def max_ms(self) -> float:
        return max(self.pauses_ms, default=float("nan"))

    def summary(self) -> str:
        if not self.pauses_ms:
            return "n/a (replay did not report a pause)"
        each = ", ".join(f"{p:.1f}" for p in self.pauses_ms)
        return f"median {self.median_ms:.1f} ms, max {self.max_ms:.1f} ms ({each} ms)"

    def lines(self) -> list[Line]:
        """The pause judged on its median over the runs; what the clients saw meanwhile against
        what they saw with no replay running."""
        ratio = self.replaying.p99_ms / self.quiet.p99_ms if self.quiet.p99_ms else float("nan")
        failed = f"; {self.failed:,} POSTs failed" if self.failed else ""
        return [
            Line(
                f"swap pause while {self.clients} clients post",
                f"{self.summary()} over {len(self.runs)} replay(s)",
                target="median ≤ 100 ms",
                met=met(self.median_ms <= 100) if self.pauses_ms else "n/a (not reported)",
            ),
            Line(
                f"{self.clients} clients' POSTs while replaying",
                f"{self.replaying.summary()}{failed}",
                f"no replay running: {self.quiet.summary()}",
                f"{ratio:.2f} (p99)",
            ),
        ]


class _Clients:
    """`count` closed-loop clients posting `bodies` in turn; their latencies go to `phase`."""

    def __init__(self, url: str, bodies: list[bytes], count: int) -> None:
        self.url, self.bodies, self.count = url, bodies, count
        self.quiet: list[float] = []
        self.replaying: list[float] = []
        self.phase: list[float] | None = None  # None: warming up, not counted
        self.failed = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.count)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(self._client(session, i) for i in range(self.count)))

    async def _client(self, session: aiohttp.ClientSession, index: int) -> None:
        while not self.stop.is_set():
            body = self.bodies[index % len(self.bodies)]
            index += self.count
            began = time.monotonic()
            try:
                async with session.post(self.url, data=body, headers=INGEST_HEADERS) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if not ok:
                self.failed += 1
                await asyncio.sleep(0.01)  # an outage must not become a busy loop
            elif self.phase is not None:
                self.phase.append(time.monotonic() - began)


async def under_load(url: str, log: Path, swaps: int, bodies: list[bytes]) -> Swaps:
    """`swaps` replays of the database at `url` while CLIENTS post `bodies` to a server on it
    (its output goes to `log`)."""
    runs: list[ReplayRun] = []
    async with serving(url, log) as server:
        posting = _Clients(f"{server.url}/v1/notifications", bodies, CLIENTS)
        task = asyncio.create_task(posting.run())
        try:
            await asyncio.sleep(WARMUP_SECONDS)
            for _ in range(swaps):
                posting.phase = posting.quiet
                await asyncio.sleep(QUIET_SECONDS)
                posting.phase = posting.replaying
                events = await count_events(url)
                runs.append(await asyncio.to_thread(replay_once, url, events))
        finally:
            posting.stop.set()
            await task
    quiet, replaying = Answers.of(posting.quiet), Answers.of(posting.replaying)
    return Swaps(CLIENTS, runs, quiet, replaying, posting.failed)
