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
from collections.abc import Awaitable, Callable
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

COPY_EVENTS = "CREATE TABLE {table} (LIKE events INCLUDING ALL)"  # no trigger, no lock
INSERT = eventrows.insert("ceiling_a")

Operation = Callable[[asyncpg.Pool], Awaitable[float]]  # one write; returns its own seconds


async def storage(url: str, rows: list[Row], seconds: int, warmup: int) -> Load:
    """Ceiling A, in this process: `pool.execute` per insert, one connection per task."""
    events = [decode(r.body) for r in rows]  # the store's own reading of each body, once
    upcoming, positions = itertools.count(), itertools.count(1)

    async def insert(pool: asyncpg.Pool) -> float:
        event = events[next(upcoming) % len(events)]
        began = time.perf_counter()
        await pool.execute(INSERT, *copy_row(event, next(positions), datetime.now(UTC), None))
        return time.perf_counter() - began

    generator = f"asyncpg, {TASKS} tasks (this process)"
    return await _driven(
        url, "ceiling_a", TASKS, insert, seconds=seconds, warmup=warmup, generator=generator
    )


async def storage_batched(url: str, rows: list[Row], seconds: int, warmup: int) -> Load:
    """Ceiling C, in this process: `copy_records_to_table` of BATCH rows per transaction."""
    events = [decode(r.body) for r in rows]
    upcoming, positions = itertools.count(), itertools.count(1)

    async def copy(pool: asyncpg.Pool) -> float:
        now = datetime.now(UTC)
        batch = [
            copy_row(events[next(upcoming) % len(events)], next(positions), now, None)
            for _ in range(BATCH)
        ]
        began = time.perf_counter()  # the batch is made before, as a server would have it
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("ceiling_c", records=batch, columns=COPY_COLUMNS)
        return time.perf_counter() - began

    generator = f"asyncpg COPY of {BATCH} a commit, {BATCH_TASKS} tasks (this process)"
    return await _driven(
        url,
        "ceiling_c",
        BATCH_TASKS,
        copy,
        seconds=seconds,
        warmup=warmup,
        generator=generator,
        per=BATCH,
    )


async def _driven(  # noqa: PLR0913 - each argument is one setting of the run
    url: str,
    table: str,
    tasks: int,
    operation: Operation,
    *,
    seconds: int,
    warmup: int,
    generator: str,
    per: int = 1,
) -> Load:
    """`tasks` tasks repeating `operation` into a fresh copy of `events` named `table`: a
    warm-up, then `seconds` measured (latencies, this process's and the machine's CPU)."""
    pool = await asyncpg.create_pool(url, min_size=tasks, max_size=tasks)
    await pool.execute(COPY_EVENTS.format(table=table))
    async with pool.acquire() as conn:
        await eventrows.prepare(conn)
    latencies: list[float] = []
    measuring, stopping = [False], [False]

    async def writer() -> None:
        while not stopping[0]:
            took = await operation(pool)
            if measuring[0]:
                latencies.append(took)

    try:
        writers = [asyncio.create_task(writer()) for _ in range(tasks)]
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
        generator,
        tasks,
        latencies,
        seconds=elapsed,
        generator_cpu_seconds=client_cpu,
        cpu=cpu,
        per=per,
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
