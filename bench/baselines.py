"""What the tracker's ingest rate is held against, measured in the same run on the same server.

- ceiling A (storage): one INSERT + COMMIT per delivery, from 64 concurrent tasks, into a copy of
  `events` (same columns and indexes, rows made by `copyload.copy_row`) without the append's
  locks or projections: what PostgreSQL gives a writer that does not batch. Every run has it.
- ceiling C (storage, batched): the same rows COPYed `BATCH` at a time, one transaction each,
  from a few tasks: the physical ceiling for durable appends here, as far as a client that
  batches (as group commit does) can take it.
- ceiling B (HTTP): a bare aiohttp handler that reads and parses the same body
  (bench/bare_http.py), driven by the same wrk script as the tracker.
- the peer: the deliveries appended through `eventsourcing`'s PostgreSQL application recorder
  (the `bench` extra pins it), from the thread-pool size a one-second probe finds fastest, one
  event per transaction and in its best mode, `BEST_PER_SAVE` events per `insert_events` call,
  as an application saving several aggregates at once may. Like the tracker, it serialises
  appends (a table lock) so a follower never skips an event that commits late: the closest
  widely used Python equivalent of our log.
- disk: `pg_test_fsync`'s figure for the server's own `wal_sync_method`, one 8 kB write then a
  sync, as a WAL flush: how many flushes a second every durable commit shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import asyncpg

from bench.copyload import COLUMNS, copy_row
from bench.load import Load, wrk
from bench.postgres import libpq_parts
from bench.processes import Measured, Window, own_seconds, wait_until_answers
from testkit.server import free_port
from tracker.domain.delivery import NewEvent
from tracker.store import bodies

TASKS = 64
BATCH = 500  # rows per COPY in ceiling C (about what group commit gathers at full load)
BATCH_TASKS = 4  # concurrent COPYs: enough to keep a 2-core server busy between flushes
COPY_EVENTS = "CREATE TABLE {table} (LIKE events INCLUDING ALL)"  # no trigger, no lock
INSERT = "INSERT INTO ceiling_a ({}) OVERRIDING SYSTEM VALUE VALUES ({})".format(  # noqa: S608
    ", ".join(COLUMNS), ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
)  # the record holds its position (an identity column, hence the override)
PEER_THREADS = (1, 4, 16)  # pool sizes probed
BEST_PER_SAVE = 100  # events per save in the peer's best mode (about our group commit's batch)
PEER_SKIPPED = "peer: skipped (pip install -e '.[bench]')"
FSYNC_SECONDS = 2  # per method tested (pg_test_fsync -s)


async def storage(url: str, events: list[NewEvent], timing: tuple[int, int]) -> Load:
    """Ceiling A, in this process: `pool.execute` per insert, one connection per task."""
    upcoming, positions = itertools.count(), itertools.count(1)
    async with _copy_of_events(url, "ceiling_a", TASKS) as pool:

        async def insert() -> float:
            row = copy_row(events[next(upcoming) % len(events)], next(positions), _now(), None)
            began = time.perf_counter()
            await pool.execute(INSERT, *row)
            return time.perf_counter() - began

        return await _driven(insert, TASKS, timing, f"asyncpg, {TASKS} tasks (this process)")


async def storage_batched(url: str, events: list[NewEvent], timing: tuple[int, int]) -> Load:
    """Ceiling C, in this process: `copy_records_to_table` of BATCH rows per transaction."""
    upcoming, positions = itertools.count(), itertools.count(1)
    async with _copy_of_events(url, "ceiling_c", BATCH_TASKS) as pool:

        async def copy() -> float:
            now = _now()
            batch = [
                copy_row(events[next(upcoming) % len(events)], next(positions), now, None)
                for _ in range(BATCH)
            ]
            began = time.perf_counter()  # the batch is made before, as a server would have it
            async with pool.acquire() as conn:
                await conn.copy_records_to_table("ceiling_c", records=batch, columns=COLUMNS)
            return time.perf_counter() - began

        name = f"asyncpg COPY of {BATCH} a commit, {BATCH_TASKS} tasks (this process)"
        return await _driven(copy, BATCH_TASKS, timing, name, BATCH)


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def _copy_of_events(url: str, table: str, size: int) -> AsyncIterator[asyncpg.Pool]:
    """A pool of `size` connections to a database with a copy of `events` named `table`."""
    async with asyncpg.create_pool(url, min_size=size, max_size=size) as pool:
        await pool.execute(COPY_EVENTS.format(table=table))
        async with pool.acquire() as conn:
            await bodies.ready(conn)
        yield pool


async def _driven(
    operation: Callable[[], Awaitable[float]],
    tasks: int,
    timing: tuple[int, int],
    generator: str,
    per: int = 1,
) -> Load:
    """`tasks` tasks repeating `operation` (which returns its own seconds, for `per` events): a
    warm-up, then the seconds measured (latencies, this process's and the machine's CPU)."""
    (seconds, warmup), latencies, measuring, stopping = timing, [], [False], [False]

    async def writer() -> None:
        while not stopping[0]:
            took = await operation()
            if measuring[0]:
                latencies.append(took)

    writers = [asyncio.create_task(writer()) for _ in range(tasks)]
    try:
        await asyncio.sleep(warmup)
        window, cpu_before = Window(None), own_seconds()
        measuring[0], started = True, time.monotonic()
        await asyncio.sleep(seconds)
        measuring[0], elapsed = False, time.monotonic() - started
        cpu, client_cpu = window.end(), own_seconds() - cpu_before
    finally:
        stopping[0] = True
        await asyncio.gather(*writers)
    return Load.in_process(
        generator,
        tasks,
        latencies,
        seconds=elapsed,
        generator_cpu_seconds=client_cpu,
        cpu=cpu,
        per=per,
    )


def http(script: Path, connections: int, timing: tuple[int, int]) -> Load:
    """Ceiling B: the bare server as its own process, wrk as the tracker gets it."""
    (seconds, warmup), port = timing, free_port()
    server = Measured([sys.executable, "-m", "bench.bare_http", "--port", str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{url}/healthz", server)
        wrk(url, script, connections, warmup, pid=server.process.pid)
        return wrk(url, script, connections, seconds, pid=server.process.pid)
    finally:
        if server.poll() is None:
            server.process.send_signal(signal.SIGINT)
        server.wait(timeout=10)


def peer_version() -> str | None:
    try:
        return metadata.version("eventsourcing")
    except metadata.PackageNotFoundError:
        return None


async def peer(url: str, events: list[NewEvent], timing: tuple[int, int], per_save: int) -> Load:
    """The peer in threads (its recorder is synchronous), at the pool size a one-second probe
    of each of PEER_THREADS finds fastest, `per_save` events a transaction."""
    from eventsourcing.persistence import StoredEvent  # noqa: PLC0415 - an optional extra
    from eventsourcing.postgres import (  # noqa: PLC0415
        PostgresApplicationRecorder,
        PostgresDatastore,
    )

    p, upcoming, lock = libpq_parts(url), itertools.count(), threading.Lock()
    versions: dict[str, int] = defaultdict(int)  # each stream's events, in arrival order
    saves = "1 event" if per_save == 1 else f"{per_save} events"

    def append() -> float:
        stored = []
        with lock:  # versions keep counting if the bodies wrap around
            for _ in range(per_save):
                e = events[next(upcoming) % len(events)]
                versions[e.stream_id] += 1
                topic = f"tracker:{e.event_type}"
                stored.append(StoredEvent(e.stream_id, versions[e.stream_id], topic, e.raw))
        began = time.perf_counter()
        recorder.insert_events(stored)
        return time.perf_counter() - began

    async def measured(threads: int, timing: tuple[int, int]) -> Load:
        loop = asyncio.get_running_loop()
        name = f"eventsourcing, {threads} threads, {saves} a save (this process)"
        return await _driven(
            lambda: loop.run_in_executor(pool, append), threads, timing, name, per_save
        )

    datastore = PostgresDatastore(
        *(p["dbname"], p["host"], p["port"], p["user"], p["password"]),
        pool_size=max(PEER_THREADS),
        originator_id_type="text",
    )
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="peer_events")
        recorder.create_table()
        with ThreadPoolExecutor(max(PEER_THREADS)) as pool:
            probes = {n: (await measured(n, (1, 0))).rate for n in PEER_THREADS}
            return await measured(max(probes, key=lambda n: probes[n]), timing)
    finally:
        with contextlib.suppress(Exception):
            datastore.close()


def fsyncs_per_second(method: str) -> float | None:
    """pg_test_fsync's ops/sec for `method` writing one 8 kB block; None without the tool (it
    is looked for beside the embedded server's binaries, on PATH, in Debian's layout)."""
    spec = find_spec("pgserver")
    places = (
        [str(Path(spec.origin).parent / "pginstall/bin/pg_test_fsync")]
        if spec and spec.origin
        else []
    )
    places += [shutil.which("pg_test_fsync") or ""]
    places += sorted(
        map(str, Path("/usr/lib/postgresql").glob("*/bin/pg_test_fsync")), reverse=True
    )
    found = next((p for p in places if p and Path(p).is_file()), None)
    if found is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        output = subprocess.run(
            [found, "-s", str(FSYNC_SECONDS), "-f", str(Path(tmp) / "pg_test_fsync.out")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
    # The figure for `method` in the first table (one 8 kB write per sync).
    section = output.split("Compare file sync methods using one 8kB write", 1)[-1]
    section = section.split("Compare file sync methods using two", 1)[0]
    match = re.search(rf"^\s*{re.escape(method)}\s+([\d.,]+) ops/sec", section, re.MULTILINE)
    return float(match[1].replace(",", "")) if match else None
