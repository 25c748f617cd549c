"""The tracker's own commands as an operator runs them (`tracker replay --check`, `verify`,
`export > /dev/null`: each its own process, wall time and peak memory of its process tree), and
what the log takes on disk."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import asyncpg

from bench.processes import Measured
from bench.procfs import tree_memory_mb
from bench.replay_rate import RSS_EVERY, tracker_env


@dataclass(frozen=True, slots=True)
class Ran:
    command: str
    returncode: int
    seconds: float  # wall, start to exit
    peak_rss_mb: float  # its process tree, sampled (see bench.procfs.tree_memory_mb)
    cpu_seconds: float
    said: str  # its last line of output (stdout, else stderr)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def tracker(url: str, *args: str, discard_stdout: bool = False) -> Ran:
    """`python -m tracker ARGS` on the database at `url`, sampling its memory while it runs."""
    command = [sys.executable, "-m", "tracker", *args]
    running = Measured(command, tracker_env(url), discard_stdout=discard_stdout)
    peak = 0.0
    while (finished := running.poll()) is None:
        now, largest = tree_memory_mb(running.process.pid)
        peak = max(peak, now, largest)
        time.sleep(RSS_EVERY)
    lines = (finished.stdout.strip() or finished.stderr.strip()).splitlines()
    return Ran(
        command=f"tracker {' '.join(args)}",
        returncode=finished.returncode,
        seconds=finished.seconds,
        peak_rss_mb=peak,
        cpu_seconds=finished.cpu_seconds,
        said=lines[-1][:300] if lines else "",
    )


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


SIZES = """
SELECT pg_relation_size(c.oid) AS heap,
       pg_indexes_size(c.oid) AS indexes,
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast,
       pg_total_relation_size(c.oid) AS total,
       pg_database_size(current_database()) AS database
FROM pg_class c WHERE c.oid = 'events'::regclass
"""


async def storage(url: str) -> Storage:
    conn = await asyncpg.connect(url)
    try:
        rows: int = await conn.fetchval("SELECT count(*) FROM events")
        sizes = await conn.fetchrow(SIZES)
        if sizes is None:
            raise RuntimeError("no events table")
        return Storage(rows=rows, **dict(sizes))
    finally:
        await conn.close()


async def timed(url: str, statement: str) -> float:
    """Seconds `statement` takes on the database: VACUUM (ANALYZE) after the bulk load, ANALYZE
    of the projections replay swapped in, as autovacuum would."""
    conn = await asyncpg.connect(url)
    try:
        started = time.monotonic()
        await conn.execute(statement)
        return time.monotonic() - started
    finally:
        await conn.close()


async def middle_position(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        last: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        return last // 2
    finally:
        await conn.close()
