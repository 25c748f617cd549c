"""Swap pause: `tracker replay` (its own process) while 32 clients post to a real `tracker serve`.

The replay reports how long ingestion waited for its swap (the append lock held, from its own
"ingestion paused X ms for the swap"); the clients show what that looked like from outside.
Each client POSTs the next body as soon as the last one is answered (closed loop, keep-alive,
the ingest token in the Authorization header) and times every answer, split into the quiet
seconds before each replay and the time the replay process runs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.load import median, percentile
from bench.postgres import count_events
from bench.replay_rate import ReplayRun, replay_once
from bench.server import INGEST_HEADERS, tracker

CLIENTS = 32
QUIET_SECONDS = 2.0  # before each replay: the clients' answers without one
WARMUP_SECONDS = 1.0  # not counted: connections opening, the server's first requests


@dataclass(frozen=True, slots=True)
class Answers:
    """Client-side latency of the POSTs of one phase, in ms."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Answers:
        ordered = sorted(seconds)
        return cls(
            count=len(ordered),
            p50_ms=percentile(ordered, 50) * 1000,
            p99_ms=percentile(ordered, 99) * 1000,
            max_ms=ordered[-1] * 1000 if ordered else float("nan"),
        )

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


async def under_load(
    url: str, log: Path, swaps: int, bodies: list[bytes], clients: int = CLIENTS
) -> Swaps:
    """`swaps` replays of the database at `url` while `clients` post `bodies` to a server on it
    (its output goes to `log`)."""
    runs: list[ReplayRun] = []
    async with tracker(url, log) as server:
        posting = _Clients(f"{server.url}/v1/notifications", bodies, clients)
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
    return Swaps(
        clients=clients,
        runs=runs,
        quiet=Answers.of(posting.quiet),
        replaying=Answers.of(posting.replaying),
        failed=posting.failed,
    )
