"""Everything measured at one fleet size, in a fresh database of its own:

load (COPY, then VACUUM ANALYZE) → bytes per event → `tracker replay`, `runs` times (the first
builds the projections) → `replay --check` → `verify` → `export` → ANALYZE → reads, one
client → the swap pause, replays while 32 clients post (last: it adds their events to the log).
A phase that fails is recorded and the next ones still run, so one broken command does not
hide every other figure.

And bytes per event on the reference's own bodies, so the storage target compares like with
like: the reference (675 bytes per event in `events`, before bodies were stored once and
compressed) was measured on 200,000 bodies of 208 bytes on average from testkit.fleet's mix
(prefix "b-"). The same bodies go through the same COPY loader into a fresh database, then
VACUUM (ANALYZE), then pg_total_relation_size('events') over its row count.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench import copyload, replay
from bench.ingest import serving
from bench.load import median
from bench.postgres import connected, fresh_database, timed, value
from bench.processes import Ran, tracker
from bench.scale import fleetgen, reads
from bench.scale.plan import Fleet
from testkit import fleet as mix

T = TypeVar("T")
SAMPLE = 200  # devices and tasks the document reads rotate through
REFERENCE_BYTES_PER_EVENT, REFERENCE_BODY_BYTES = 675, 208
BYTES_TARGET = 0.6 * REFERENCE_BYTES_PER_EVENT
SIZES = """
SELECT pg_relation_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes,
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast,
       pg_total_relation_size(c.oid) AS total, pg_database_size(current_database()) AS database
FROM pg_class c WHERE c.oid = 'events'::regclass
"""


@dataclass(frozen=True, slots=True)
class Settings:
    runs: int  # quiet replays
    swaps: int  # replays while clients post
    requests: int  # timed requests per read
    warmup: int  # untimed requests before them
    swap_bodies: int  # distinct bodies the posting clients send


@dataclass(frozen=True, slots=True)
class Storage:
    """The `events` table on disk, in bytes: its heap (main fork), indexes, TOAST (with its
    index), the rest (free space and visibility maps); and the whole database."""

    rows: int
    heap: int
    indexes: int
    toast: int
    total: int
    database: int

    @property
    def other(self) -> int:
        return self.total - self.heap - self.indexes - self.toast

    def per_event(self, part: int) -> float:
        return part / self.rows if self.rows else float("nan")

    @classmethod
    async def of(cls, url: str) -> Storage:
        async with connected(url) as conn:
            rows = int(await conn.fetchval("SELECT count(*) FROM events"))
            sizes = await conn.fetchrow(SIZES)
        if sizes is None:
            raise RuntimeError("no events table")
        return cls(**(dict(sizes) | {"rows": rows}))


@dataclass
class Size:
    devices: int
    tasks: int
    loaded: copyload.Loaded | None = None
    vacuum_seconds: float | None = None
    storage: Storage | None = None
    replays: list[replay.ReplayRun] = field(default_factory=list)
    check: Ran | None = None
    verify: Ran | None = None
    export: Ran | None = None
    reads: list[reads.Timing] = field(default_factory=list)
    swaps: replay.Swaps | None = None
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
        if (loaded := await size.attempt("load (generate, decode, COPY)", load)) is None:
            return size
        size.loaded, x = loaded, loaded
        print(
            f"  loaded {x.events:,} events ({x.streams:,} streams, bodies {x.mean_body:.0f} B on "
            f"average) in {x.seconds:.1f} s: {x.rate:,.0f} events/s; generating "
            f"{x.generation_rate:,.0f}/s; producer thread: {x.generate_seconds:.1f} s generating, "
            f"{x.decode_seconds:.1f} s in decode + copy_row; {x.copy_seconds:.1f} s waiting on COPY"
        )
        size.vacuum_seconds = await size.attempt("VACUUM (ANALYZE)", timed(url, "VACUUM (ANALYZE)"))
        size.storage = st = await Storage.of(url)
        print(
            f"  VACUUM (ANALYZE): {size.vacuum_seconds or 0.0:.1f} s; events: "
            f"{st.per_event(st.total):,.0f} bytes per event (heap {st.per_event(st.heap):,.0f}, "
            f"indexes {st.per_event(st.indexes):,.0f}, TOAST {st.per_event(st.toast):,.0f}); "
            f"database {st.database / 2**20:,.0f} MB",
            flush=True,
        )
        await _commands(url, size, s.runs)
        analyzed = await size.attempt("ANALYZE", timed(url, "ANALYZE"))
        print(f"  ANALYZE (the tables replay swapped in): {analyzed or 0:.1f} s", flush=True)
        middle = int(str(await value(url, "SELECT coalesce(max(position), 0) / 2 FROM events")))
        picks = reads.Picks.of(fleet, middle, SAMPLE)
        logs = (workdir / f"tracker-{name}-{fleet.devices}.log" for name in ("reads", "swap"))
        reading = _reads(url, picks, s, next(logs), fleet.devices // 2)
        size.reads = await size.attempt("reads", reading) or []
        size.swaps = await size.attempt("swap pause", _swaps(url, s, next(logs)))
    size.seconds = time.monotonic() - started
    print(f"  {fleet.devices:,} devices took {size.seconds / 60:.1f} min", flush=True)
    return size


async def _commands(url: str, size: Size, runs: int) -> None:
    """Replay `runs` times, then `replay --check`, `verify` and `export > /dev/null`."""
    for number in range(1, runs + 1):
        if run := await size.attempt(
            "replay", asyncio.to_thread(replay.replay_once, url, size.events)
        ):
            size.replays.append(run)
            print(
                f"  replay {number}/{runs}: {run.events:,} events in {run.seconds:.1f} s "
                f"({run.rate:,.0f}/s), peak RSS {run.peak_rss_mb:,.0f} MB",
                flush=True,
            )
    for name, args in (
        ("check", ("replay", "--check")),
        ("verify", ("verify",)),
        ("export", ("export",)),
    ):
        command = asyncio.to_thread(tracker, url, *args, discard_stdout=name == "export")
        if ran := await size.attempt(name, command):
            setattr(size, name, ran)
            print(f"  {ran.command}: {ran.seconds:.1f} s, exit {ran.returncode}: {ran.said}")


async def _reads(
    url: str, picks: reads.Picks, s: Settings, log: Path, depth: int
) -> list[reads.Timing]:
    """Every read, against one `tracker serve`; a deep page is `depth` items in."""
    print(f"  reads: one client, {s.warmup} warm-up + {s.requests} timed requests each")

    def said(t: reads.Timing) -> None:
        figure = f"p50 {t.p50_ms:.2f} ms, p99 {t.p99_ms:.2f} ms" if t.status == "ok" else t.status
        print(f"    {t.label}: {figure}{f' ({t.note})' if t.note else ''}", flush=True)

    async with serving(url, log) as server:
        client = reads.Client(server.port)
        try:
            return await asyncio.to_thread(
                reads.measure, client, picks, s.warmup, s.requests, depth, said
            )
        finally:
            client.close()


async def _swaps(url: str, s: Settings, log: Path) -> replay.Swaps:
    print(f"  swap pause: {s.swaps} replay(s) while {replay.CLIENTS} clients post", flush=True)
    bodies = list(mix.deliveries(s.swap_bodies, f"live{secrets.token_hex(2)}-"))
    done = await replay.under_load(url, log, s.swaps, bodies)
    failed = f"; {done.failed:,} POSTs failed" if done.failed else ""
    print(f"  swap pause {done.summary()}; clients meanwhile {done.replaying.summary()}{failed}")
    return done


@dataclass(frozen=True, slots=True)
class Reference:
    bodies: int
    mean_body: float
    storage: Storage

    @property
    def per_event(self) -> float:
        return self.storage.per_event(self.storage.total)


async def reference(server_url: str, count: int) -> Reference:
    """Bytes per event of `count` of the reference's bodies, loaded as the fleet is."""
    bodies = list(mix.deliveries(count, "b-"))
    async with fresh_database(server_url) as url:
        start = time.time_ns() // 1000
        loaded = await copyload.load(url, ((start + i, b) for i, b in enumerate(bodies)), count)
        await timed(url, "VACUUM (ANALYZE)")
        return Reference(count, loaded.mean_body, await Storage.of(url))
