"""The two ceilings the tracker's ingest rate is held against, measured in the same run.

A (storage): one INSERT + COMMIT per delivery, from 64 concurrent tasks, into a copy of the
`events` table (same columns, indexes and payload) without the append lock or projections: what
PostgreSQL gives a writer that does not batch.

B (HTTP): a bare aiohttp handler that reads and parses the same body (bench/bare_http.py), driven
by the same wrk script as the tracker: what aiohttp gives one process that does nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.load import Load, wrk
from bench.processes import Measured, wait_until_answers
from bench.procfs import Window, own_seconds
from bench.workload import Row
from tests.support.server import free_port

TASKS = 64

COPY_EVENTS = "CREATE TABLE ceiling_a (LIKE events INCLUDING ALL)"  # no trigger, no lock
INSERT = """
INSERT INTO ceiling_a
    (stream_type, stream_id, event_type, payload, raw, received_at, occurred_at, hash)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
"""


async def storage(url: str, rows: list[Row], seconds: int, warmup: int) -> Load:
    """Ceiling A, in this process: `pool.execute` per insert, one connection per task."""
    pool = await asyncpg.create_pool(url, min_size=TASKS, max_size=TASKS)
    await pool.execute(COPY_EVENTS)
    upcoming = itertools.count()
    latencies: list[float] = []
    measuring, stopping = [False], [False]

    async def writer() -> None:
        while not stopping[0]:
            r = rows[next(upcoming) % len(rows)]
            began = time.perf_counter()
            await pool.execute(
                INSERT,
                *(r.stream_type, r.stream_id, r.event_type, r.body.decode(), r.body),
                *(datetime.now(UTC), r.occurred_at, hashlib.sha256(r.body).digest()),
            )
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
