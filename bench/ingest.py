"""Ingest: the tracker as a real server, fed the fleet mix, in a fresh database per run.

Closed loop (wrk, 64 keep-alive connections) for the most it acknowledges per second, then an
open loop at half that rate for the latency a platform sees when the server is not saturated.
The log's row count before and after the closed-loop run cross-checks wrk's count of 200s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bench.load import Load, median, open_loop, wrk
from bench.postgres import count_events, fresh_database
from bench.server import INGEST_HEADERS, tracker

CONNECTIONS = 64  # the least the targets are stated for; --connections raises it


@dataclass(frozen=True, slots=True)
class IngestRun:
    workers: int
    closed: Load  # wrk at full speed
    half: Load  # open loop at half the closed-loop rate
    logged: int  # rows the closed-loop run added to the log

    @property
    def logged_rate(self) -> float:
        return self.logged / self.closed.seconds


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """Medians over the runs of one configuration."""

    workers: int
    rate: float
    logged_rate: float
    p50_ms: float
    p99_ms: float
    half_rate: float
    half_p50_ms: float
    half_p99_ms: float
    runs: list[IngestRun]

    @classmethod
    def of(cls, runs: list[IngestRun]) -> IngestSummary:
        return cls(
            workers=runs[0].workers,
            rate=median([r.closed.rate for r in runs]),
            logged_rate=median([r.logged_rate for r in runs]),
            p50_ms=median([r.closed.p50_ms for r in runs]),
            p99_ms=median([r.closed.p99_ms for r in runs]),
            half_rate=median([r.half.rate for r in runs]),
            half_p50_ms=median([r.half.p50_ms for r in runs]),
            half_p99_ms=median([r.half.p99_ms for r in runs]),
            runs=runs,
        )


async def ingest_run(  # noqa: PLR0913 - the knobs of one run
    server_url: str,
    workers: int,
    *,
    bodies: Path,
    script: Path,
    seconds: int,
    warmup: int,
    workdir: Path,
    connections: int = CONNECTIONS,
) -> IngestRun:
    async with (
        fresh_database(server_url) as url,
        tracker(url, workdir / f"tracker-ingest-{workers}w.log", workers) as server,
    ):
        pid = server.process.pid if server.process else None
        warm = await asyncio.to_thread(wrk, server.url, script, connections, warmup, pid=pid)
        sent = warm.ok + warm.errors  # each run goes on with the bodies after the last one sent
        before = await count_events(url)
        closed = await asyncio.to_thread(
            wrk, server.url, script, connections, seconds, pid=pid, offset=sent
        )
        logged = await count_events(url) - before
        sent += closed.ok + closed.errors
        half = await asyncio.to_thread(
            open_loop,
            server.port,
            bodies,
            closed.rate / 2,
            seconds,
            pid=pid,
            authorization=INGEST_HEADERS["Authorization"],
            offset=sent,
            connections=connections,
        )
    return IngestRun(workers, closed, half, logged)
