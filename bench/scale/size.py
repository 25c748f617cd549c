"""Everything measured at one fleet size, in a fresh database of its own:

load (COPY, then VACUUM ANALYZE) → bytes per event → `tracker replay`, `runs` times (the first
builds the projections) → `replay --check` → `verify` → `export` → ANALYZE → reads, one
client → the swap pause, replays while 32 clients post (last: it adds their events to the log).

A phase that fails is recorded and the next ones still run, so one broken command does not
hide every other figure.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench import swap, workload
from bench.load import median
from bench.postgres import fresh_database
from bench.replay_rate import ReplayRun, replay_once
from bench.scale import commands, copyload, endpoints, fleetgen, reads
from bench.scale.client import Client
from bench.scale.plan import Fleet
from bench.server import tracker

T = TypeVar("T")
SAMPLE = 200  # devices and tasks the document reads rotate through


@dataclass(frozen=True, slots=True)
class Settings:
    runs: int  # quiet replays
    swaps: int  # replays while clients post
    requests: int  # timed requests per read
    warmup: int  # untimed requests before them
    swap_bodies: int  # distinct bodies the posting clients send


@dataclass
class Size:
    devices: int
    tasks: int
    loaded: copyload.Loaded | None = None
    vacuum_seconds: float | None = None
    storage: commands.Storage | None = None
    replays: list[ReplayRun] = field(default_factory=list)
    check: commands.Ran | None = None
    verify: commands.Ran | None = None
    export: commands.Ran | None = None
    reads: list[reads.Timing] = field(default_factory=list)
    swaps: swap.Swaps | None = None
    failures: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds of each, summed
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return self.storage.rows if self.storage else self.loaded.events if self.loaded else 0

    @property
    def replay_seconds(self) -> float:
        return median([r.seconds for r in self.replays])

    @property
    def replay_rate(self) -> float:
        return median([r.rate for r in self.replays])

    @property
    def replay_peak_mb(self) -> float:
        return max((r.peak_rss_mb for r in self.replays), default=float("nan"))

    async def attempt(self, phase: str, work: Awaitable[T]) -> T | None:
        """`work`, timed as `phase`; if it fails, the failure is recorded and None returned."""
        started = time.monotonic()
        try:
            return await work
        except Exception as error:  # noqa: BLE001 - recorded, shown with the table
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            said = f"{type(error).__name__}: {lines[0][:200] if lines else ''}"
            if len(lines) > 1:  # a command's failure: its last line says what went wrong
                said += f" … {lines[-1][:300]}"
            self.failures.append(f"{phase}: {said}")
            print(f"  {phase} FAILED: {said}", flush=True)
            return None
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - started


async def measure(fleet: Fleet, s: Settings, server_url: str, workdir: Path) -> Size:
    size, started = Size(fleet.devices, len(fleet.tasks)), time.monotonic()
    print(f"\n== {fleet.devices:,} devices, {len(fleet.tasks):,} batch tasks", flush=True)
    async with fresh_database(server_url) as url:
        print("  loading: COPY of generated bodies (decode + copy_row; no HTTP)", flush=True)
        load = copyload.load(url, fleetgen.stream(fleet), fleet.expected_events)
        size.loaded = await size.attempt("load (generate, decode, COPY)", load)
        if size.loaded is None:
            return size
        _said_load(size.loaded)
        size.vacuum_seconds = await size.attempt(
            "VACUUM (ANALYZE)", commands.timed(url, "VACUUM (ANALYZE)")
        )
        size.storage = await commands.storage(url)
        _said_storage(size.vacuum_seconds or 0.0, size.storage)
        for number in range(1, s.runs + 1):
            run = await size.attempt("replay", asyncio.to_thread(replay_once, url, size.events))
            if run:
                size.replays.append(run)
                print(
                    f"  replay {number}/{s.runs}: {run.events:,} events in {run.seconds:.1f} s "
                    f"({run.rate:,.0f}/s), peak RSS {run.peak_rss_mb:,.0f} MB",
                    flush=True,
                )
        for name, args, discard in (
            ("check", ("replay", "--check"), False),
            ("verify", ("verify",), False),
            ("export", ("export",), True),
        ):
            command = asyncio.to_thread(commands.tracker, url, *args, discard_stdout=discard)
            ran = await size.attempt(name, command)
            setattr(size, name, ran)
            if ran:
                print(f"  {ran.command}: {ran.seconds:.1f} s, exit {ran.returncode}: {ran.said}")
        analyzed = await size.attempt("ANALYZE", commands.timed(url, "ANALYZE"))
        print(f"  ANALYZE (the tables replay swapped in): {analyzed or 0:.1f} s", flush=True)
        picks = endpoints.Picks.of(fleet, await commands.middle_position(url), SAMPLE)
        size.reads = await size.attempt("reads", _reads(url, picks, s, fleet, workdir)) or []
        size.swaps = await size.attempt("swap pause", _swaps(url, s, workdir, fleet.devices))
    size.seconds = time.monotonic() - started
    print(f"  {fleet.devices:,} devices took {size.seconds / 60:.1f} min", flush=True)
    return size


async def _reads(
    url: str, picks: endpoints.Picks, s: Settings, fleet: Fleet, workdir: Path
) -> list[reads.Timing]:
    print(f"  reads: one client, {s.warmup} warm-up + {s.requests} timed requests each")
    async with tracker(url, workdir / f"tracker-reads-{fleet.devices}.log") as server:
        client = Client(server.port)
        try:
            return await asyncio.to_thread(
                reads.measure, client, picks, s.warmup, s.requests, fleet.devices // 2, _said_read
            )
        finally:
            client.close()


async def _swaps(url: str, s: Settings, workdir: Path, devices: int) -> swap.Swaps:
    print(f"  swap pause: {s.swaps} replay(s) while {swap.CLIENTS} clients post", flush=True)
    bodies = list(workload.fleet(s.swap_bodies, f"live{secrets.token_hex(2)}-"))
    done = await swap.under_load(url, workdir / f"tracker-swap-{devices}.log", s.swaps, bodies)
    failed = f"; {done.failed:,} POSTs failed" if done.failed else ""
    print(f"  swap pause {done.summary()}; clients meanwhile {done.replaying.summary()}{failed}")
    return done


def _said_load(x: copyload.Loaded) -> None:
    print(
        f"  loaded {x.events:,} events ({x.streams:,} streams, bodies {x.mean_body:.0f} B on "
        f"average) in {x.seconds:.1f} s: {x.rate:,.0f} events/s; generating "
        f"{x.generation_rate:,.0f}/s; producer thread: {x.generate_seconds:.1f} s generating, "
        f"{x.decode_seconds:.1f} s in decode + copy_row; {x.copy_seconds:.1f} s waiting on COPY",
        flush=True,
    )


def _said_storage(vacuum: float, x: commands.Storage) -> None:
    print(
        f"  VACUUM (ANALYZE): {vacuum:.1f} s; events: {x.per_event(x.total):,.0f} bytes per event "
        f"(heap {x.per_event(x.heap):,.0f}, indexes {x.per_event(x.indexes):,.0f}, TOAST "
        f"{x.per_event(x.toast):,.0f}); database {x.database / 2**20:,.0f} MB",
        flush=True,
    )


def _said_read(t: reads.Timing) -> None:
    figure = f"p50 {t.p50_ms:.2f} ms, p99 {t.p99_ms:.2f} ms" if t.status == "ok" else t.status
    print(f"    {t.label}: {figure}{f' ({t.note})' if t.note else ''}", flush=True)
