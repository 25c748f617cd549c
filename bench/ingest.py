"""Ingest: the tracker as a real server, fed the fleet mix, in a fresh database per run.

Closed loop (wrk, 64 keep-alive connections) for the most it acknowledges per second, then an
open loop at half that rate for the latency a platform sees when the server is not saturated.
The log's row count before and after the closed-loop run cross-checks wrk's count of 200s.
With `servers` > 1, that many `tracker serve` processes on their own ports share the database,
and one wrk run (a thread per server) and the open loop spread the load over them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from bench.load import Load, median, open_loop, wrk, wrk_script
from bench.postgres import count_events, fresh_database
from bench.server import INGEST_HEADERS, tracker

CONNECTIONS = 64  # the least the targets are stated for; --connections raises it


@dataclass(frozen=True, slots=True)
class IngestRun:
    workers: int
    servers: int
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
    servers: int
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
            servers=runs[0].servers,
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
    servers: int = 1,
) -> IngestRun:
    async with fresh_database(server_url) as url, contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(
                tracker(url, workdir / f"tracker-ingest-{workers}w-{n}.log", workers)
            )
            for n in range(servers)
        ]
        ports = tuple(server.port for server in started)
        pid = tuple(server.process.pid for server in started if server.process)
        if servers > 1:  # one wrk thread per server, each sending to its own
            script = wrk_script(
                workdir / f"post-{servers}.lua",
                "post",
                bodies,
                "/v1/notifications",
                INGEST_HEADERS,
                ports=ports,
            )
        url0 = started[0].url
        warm = await asyncio.to_thread(
            wrk, url0, script, connections, warmup, pid=pid, threads=servers
        )
        sent = warm.ok + warm.errors  # each run goes on with the bodies after the last one sent
        before = await count_events(url)
        closed = await asyncio.to_thread(
            wrk, url0, script, connections, seconds, pid=pid, offset=sent, threads=servers
        )
        logged = await count_events(url) - before
        sent += closed.ok + closed.errors
        half = await asyncio.to_thread(
            open_loop,
            ports,
            bodies,
            closed.rate / 2,
            seconds,
            pid=pid,
            authorization=INGEST_HEADERS["Authorization"],
            offset=sent,
            connections=connections,
        )
    return IngestRun(workers, servers, closed, half, logged)
