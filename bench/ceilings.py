"""The two ceilings the tracker's ingest rate is held against, measured in the same run.

A (storage): one INSERT + COMMIT per delivery, from 64 concurrent tasks, into a copy of the
`events` table (same columns and indexes; each row as the store makes it, by
`tracker.store.events.copy_row`) without the append lock or projections: what PostgreSQL gives a
writer that does not batch.

C (storage, batched): the same rows COPYed `BATCH` at a time, each batch its own transaction, from
a few tasks: the physical ceiling for durable appends on this PostgreSQL, as far as a client that
batches (as group commit does) can take it.

B (HTTP): a bare aiohttp handler that reads and parses the same body (bench/bare_http.py), driven
by the same wrk script as the tracker: what aiohttp gives one process that does nothing else.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import eventrows
from bench.load import Load, wrk
from bench.processes import Measured, wait_until_answers
from bench.procfs import Window, own_seconds
from bench.workload import Row
from tests.support.server import free_port
from tracker.domain.delivery import decode
from tracker.store.events import COPY_COLUMNS, copy_row

TASKS = 64
BATCH = 500  # rows per COPY in ceiling C (about what group commit gathers at full load)
BATCH_TASKS = 4  # concurrent COPYs: enough to keep a 2-core server busy between flushes

COPY_EVENTS = "CREATE TABLE ceiling_a (LIKE events INCLUDING ALL)"  # no trigger, no lock
INSERT = eventrows.insert("ceiling_a")


async def storage(url: str, rows: list[Row], seconds: int, warmup: int) -> Load:
    """Ceiling A, in this process: `pool.execute` per insert, one connection per task."""
    pool = await asyncpg.create_pool(url, min_size=TASKS, max_size=TASKS)
    await pool.execute(COPY_EVENTS)
    async with pool.acquire() as conn:
        await eventrows.prepare(conn)
    events = [decode(r.body) for r in rows]  # the store's own reading of each body, once
    upcoming, positions = itertools.count(), itertools.count(1)
    latencies: list[float] = []
    measuring, stopping = [False], [False]

    async def writer() -> None:
        while not stopping[0]:
            event = events[next(upcoming) % len(events)]
            began = time.perf_counter()
            await pool.execute(INSERT, *copy_row(event, next(positions), datetime.now(UTC), None))
            if measuring[0]:
                latencies.append(time.perf_counter() - began)

    try:
        writers = [asyncio.create_task(writer()) for _ in range(TASKS)]
        await asyncio.sleep(warmup)
        window, cpu_before = Window(None), own_seconds()
        measuring[0], started = True, time.monotonic()
        await asyncio.sleep(seconds)
        measuring[0], elapsed = False, time.monotonic() - started
        cpu, client_cpu = window.end(), own_seconds() - cpu_before
        stopping[0] = True
        await asyncio.gather(*writers)
    finally:
        await pool.close()
    return Load.in_process(
        f"asyncpg, {TASKS} tasks (this process)",
        TASKS,
        latencies,
        seconds=elapsed,
        generator_cpu_seconds=client_cpu,
        cpu=cpu,
    )


async def storage_batched(url: str, rows: list[Row], seconds: int, warmup: int) -> Load:
    """Ceiling C, in this process: `copy_records_to_table` of BATCH rows per transaction."""
    pool = await asyncpg.create_pool(url, min_size=BATCH_TASKS, max_size=BATCH_TASKS)
    await pool.execute(COPY_EVENTS.replace("ceiling_a", "ceiling_c"))
    async with pool.acquire() as conn:
        await eventrows.prepare(conn)
    events = [decode(r.body) for r in rows]
    upcoming, positions = itertools.count(), itertools.count(1)
    latencies: list[float] = []
    measuring, stopping = [False], [False]

    async def writer() -> None:
        while not stopping[0]:
            now = datetime.now(UTC)
            batch = [
                copy_row(events[next(upcoming) % len(events)], next(positions), now, None)
                for _ in range(BATCH)
            ]
            began = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.copy_records_to_table("ceiling_c", records=batch, columns=COPY_COLUMNS)
            if measuring[0]:
                latencies.append(time.perf_counter() - began)

    try:
        writers = [asyncio.create_task(writer()) for _ in range(BATCH_TASKS)]
        await asyncio.sleep(warmup)
        window, cpu_before = Window(None), own_seconds()
        measuring[0], started = True, time.monotonic()
        await asyncio.sleep(seconds)
        measuring[0], elapsed = False, time.monotonic() - started
        cpu, client_cpu = window.end(), own_seconds() - cpu_before
        stopping[0] = True
        await asyncio.gather(*writers)
    finally:
        await pool.close()
    return Load.in_process(
        f"asyncpg COPY of {BATCH} a commit, {BATCH_TASKS} tasks (this process)",
        BATCH_TASKS,
        latencies,
        seconds=elapsed,
        generator_cpu_seconds=client_cpu,
        cpu=cpu,
        per=BATCH,
    )


def http(script: Path, connections: int, seconds: int, warmup: int) -> Load:
    """Ceiling B: the bare server as its own process, wrk as the tracker gets it."""
    port = free_port()
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
