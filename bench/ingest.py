"""Ingest and the device read: the tracker as a real server, in a fresh database per run.

Each `tracker serve` is configured as a deployment would be: tokens set (the platform sends one
with every delivery), the default log level (so the access log is written). Ingest posts the
fleet mix, closed loop (wrk, 64 keep-alive connections) for the most it acknowledges per second,
then an open loop at half that rate for the latency a platform sees when the server is not
saturated. The log's row count before and after the closed-loop run cross-checks wrk's count of
200s. With `servers` > 1, that many `tracker serve` processes on their own ports share the
database, and one wrk run (a thread per server) and the open loop spread the load over them.
The device read: `GET /v1/devices/{id}` from 32 wrk connections over the devices of a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.load import Load, median, open_loop, wrk, wrk_script
from bench.postgres import count_events, fresh_database
from bench.report import Line, met
from testkit.server import TrackerProcess

INGEST_TOKEN, READ_TOKEN = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
INGEST_HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {INGEST_TOKEN}"}
READ_HEADERS = {"Authorization": f"Bearer {READ_TOKEN}"}
CONNECTIONS = 64  # the least the targets are stated for; --connections raises it
READ_CONNECTIONS = 32
# The setups measured: (name, workers per server, servers). The first is the default
# deployment, judged against the baselines; the others against it.
SETUPS = (("ingest", 1, 1), ("ingest-workers2", 2, 1), ("ingest-servers2", 1, 2))
SCALE_OUT = 1.3  # the least gain of two processes over one (issue 14)
BUSY = 90.0  # % of the machine busy at the maximum rate: CPU, not a serial section, limits


@contextlib.asynccontextmanager
async def serving(url: str, log: Path, workers: int = 1) -> AsyncIterator[TrackerProcess]:
    env = {
        "TRACKER_DATABASE_URL": url,
        "TRACKER_INGEST_TOKEN": INGEST_TOKEN,
        "TRACKER_READ_TOKEN": READ_TOKEN,
    }
    process = TrackerProcess(env, log, args=("--workers", str(workers)) if workers > 1 else ())
    await asyncio.to_thread(process.start)
    try:
        yield process
    finally:
        await asyncio.to_thread(process.close)


def pid(server: TrackerProcess) -> int | None:
    return server.process.pid if server.process else None


@dataclass(frozen=True, slots=True)
class IngestRun:
    closed: Load  # wrk at full speed
    half: Load  # open loop at half the closed-loop rate
    logged: int  # rows the closed-loop run added to the log

    @property
    def logged_rate(self) -> float:
        return self.logged / self.closed.seconds


@dataclass(frozen=True, slots=True)
class Ingest:
    """The runs of one setup; its figures are their medians."""

    name: str
    workers: int
    servers: int
    runs: list[IngestRun]

    def of_runs(self, figure: str, of: str = "closed") -> float:
        return median([getattr(getattr(r, of), figure) for r in self.runs])

    @property
    def rate(self) -> float:
        return self.of_runs("rate")

    @property
    def label(self) -> str:
        if self.servers > 1:
            return f"ingest, {self.servers} `tracker serve` behind one wrk"
        return "ingest --workers 2" if self.workers > 1 else "ingest"

    @property
    def figure(self) -> str:
        log = median([r.logged_rate for r in self.runs])
        p50, p99 = self.of_runs("p50_ms"), self.of_runs("p99_ms")
        return f"{self.rate:,.0f} events/s (log {log:,.0f}/s); p50 {p50:.1f} ms, p99 {p99:.1f} ms"


async def run(  # noqa: PLR0913 - the knobs of one run
    server_url: str,
    setup: tuple[int, int],
    *,
    bodies: Path,
    script: Path,
    timing: tuple[int, int],
    workdir: Path,
    connections: int = CONNECTIONS,
) -> IngestRun:
    """One run of (workers, servers) on a fresh database: warm-up, closed loop, open loop."""
    (workers, servers), (seconds, warmup) = setup, timing
    async with fresh_database(server_url) as url, contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(
                serving(url, workdir / f"tracker-ingest-{workers}w-{n}.log", workers)
            )
            for n in range(servers)
        ]
        ports = tuple(server.port for server in started)
        pids = tuple(p for server in started if (p := pid(server)))
        if servers > 1:  # one wrk thread per server, each sending to its own
            script = wrk_script(
                workdir / f"post-{servers}.lua",
                "post",
                bodies,
                "/v1/notifications",
                INGEST_HEADERS,
                ports=ports,
            )
        load = (started[0].url, script, connections)
        warm = await asyncio.to_thread(wrk, *load, warmup, pid=pids, threads=servers)
        sent = warm.ok + warm.errors  # each run goes on with the bodies after the last one sent
        before = await count_events(url)
        closed = await asyncio.to_thread(
            wrk, *load, seconds, pid=pids, offset=sent, threads=servers
        )
        logged = await count_events(url) - before
        half = await asyncio.to_thread(
            open_loop,
            ports,
            bodies,
            closed.rate / 2,
            seconds,
            pid=pids,
            authorization=INGEST_HEADERS["Authorization"],
            offset=sent + closed.ok + closed.errors,
            connections=connections,
        )
    return IngestRun(closed, half, logged)


async def device_reads(
    url: str, device_ids: list[str], timing: tuple[int, int], workdir: Path
) -> Load:
    (seconds, warmup), ids = timing, workdir / "device-ids.txt"
    ids.write_text("".join(f"{device}\n" for device in device_ids))
    script = wrk_script(workdir / "get-device.lua", "get", ids, "/v1/devices/", READ_HEADERS)
    async with serving(url, workdir / "tracker-query.log") as server:
        load = (server.url, script, READ_CONNECTIONS)
        await asyncio.to_thread(wrk, *load, warmup, pid=pid(server))
        return await asyncio.to_thread(wrk, *load, seconds, pid=pid(server))


def lines(setups: list[Ingest], versus: list[tuple[str, Load, float | None]]) -> list[Line]:
    """The one-process setup against each baseline (`versus`: name, figures, the least ratio,
    or None: shown, not judged), the others against it; each setup's busy share and latency
    at half its rate."""
    out, one = [], next((s for s in setups if s.name == "ingest"), None)
    for s in setups:
        against: list[tuple[str, Load | Ingest, float | None]] = [*versus] if s is one else []
        against += [("ingest (one process)", one, SCALE_OUT)] if one and s is not one else []
        for name, base, least in against:
            ratio = s.rate / base.rate if base.rate else float("inf")
            said = f"{base.rate:,.0f}/s"
            said += (
                f"; p50 {base.p50_ms:.1f}, p99 {base.p99_ms:.1f} ms"
                if isinstance(base, Load)
                else ""
            )
            target = ("(info)", "-") if least is None else (f"≥ {least:g}", met(ratio >= least))
            out.append(Line(f"{s.label} vs {name}", s.figure, said, f"{ratio:.2f}", *target))
        out += [] if against else [Line(s.label, s.figure)]
        out += [_busy(s), _half(s)]
    return out


def _busy(s: Ingest) -> Line:
    """How busy the machine was at the maximum rate (the median over the runs)."""
    busy = median([r.closed.cpu.machine_busy_percent for r in s.runs])
    server = median([r.closed.cpu.server_percent or 0.0 for r in s.runs])
    pg = median([r.closed.cpu.postgres_percent or 0.0 for r in s.runs])
    return Line(
        f"{s.label}: machine busy at the max rate",
        f"{busy:.0f}% of all cores (server {server:.0f}%, PostgreSQL {pg:.0f}% of a core)",
        target=f"≥ {BUSY:.0f}%",
        met=met(busy >= BUSY),
    )


def _half(s: Ingest) -> Line:
    p50, p99, rate = (s.of_runs(f, "half") for f in ("p50_ms", "p99_ms", "rate"))
    return Line(
        f"{s.label}, open loop at half the max rate",
        f"p99 {p99:.1f} ms (p50 {p50:.1f} ms) at {rate:,.0f}/s",
        target="p99 ≤ 25 ms",
        met=met(p99 <= 25),
    )


def device_line(q: Load) -> Line:
    errors = f", {q.errors:,} errors" if q.errors else ""
    return Line(
        f"device GET, {q.connections} conns",
        f"p99 {q.p99_ms:.1f} ms (p50 {q.p50_ms:.1f} ms, {q.rate:,.0f}/s{errors})",
        target="p99 ≤ 10 ms",
        met=met(q.p99_ms <= 10 and q.errors == 0),
    )


def log_notes(setups: list[Ingest]) -> list[str]:
    """Where wrk's count of 200s and the log's growth disagree."""
    return [
        f"{s.name} run {number}: wrk counted {r.closed.ok:,} 200s but the log grew by "
        f"{r.logged:,} rows"
        for s in setups
        for number, r in enumerate(s.runs, 1)
        if abs(r.logged - r.closed.ok) > max(0.01 * r.closed.ok, 2 * r.closed.connections)
    ]
