"""The PostgreSQL every measurement shares: TRACKER_BENCH_DATABASE_URL, else a private embedded one.

The tracker and its baselines run on the same server, each in a fresh database, so their ratios
compare like with like. Settings are read and printed, never changed (synchronous_commit stays on).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from testkit.postgres import create_database, drop_database, embedded
from tracker.store.migrations import migrate

SETTINGS = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "commit_delay",
    "shared_buffers",
    "max_connections",
    "max_locks_per_transaction",  # room for the stream locks of the appends in flight
    "autovacuum",  # off: the projections' rows and their indexes bloat as a run goes on
)


@contextmanager
def server() -> Iterator[tuple[str, str]]:
    """(url of the server's `postgres` database, where it came from)."""
    if url := os.environ.get("TRACKER_BENCH_DATABASE_URL"):
        yield url, "TRACKER_BENCH_DATABASE_URL"
        return
    with embedded() as url:
        yield url, "embedded (pgserver), started for this run"


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_database(server_url: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A new database on the server (migrated to the tracker's schema), dropped afterwards."""
    url = await asyncio.to_thread(create_database, server_url)
    try:
        if migrated:
            async with connected(url) as conn:
                await migrate(conn)
        yield url
    finally:
        await asyncio.to_thread(drop_database, url)


async def value(url: str, query: str) -> object:
    async with connected(url) as conn:
        return await conn.fetchval(query)


async def count_events(url: str) -> int:
    return int(str(await value(url, "SELECT count(*) FROM events")))


async def timed(url: str, statement: str) -> float:
    """Seconds `statement` takes: VACUUM (ANALYZE) after a bulk load, ANALYZE of the tables
    replay swapped in, as autovacuum would."""
    async with connected(url) as conn:
        started = asyncio.get_running_loop().time()
        await conn.execute(statement)
        return asyncio.get_running_loop().time() - started


async def settings(url: str) -> dict[str, str]:
    async with connected(url) as conn:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in SETTINGS}


async def postmaster(url: str) -> int | None:
    """The pid of the server's postmaster if it runs on this machine (a backend's parent)."""
    async with connected(url) as conn:  # read while the backend is still there
        return _postgres_parent(await conn.fetchval("SELECT pg_backend_pid()"))


def _postgres_parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        name = Path(f"/proc/{parent}/comm").read_text().strip()
    except OSError:
        return None  # not on this machine (or not ours to see)
    return parent if name == "postgres" else None


def libpq_parts(url: str) -> dict[str, str]:
    """host, port, dbname, user, password of a URL (a ?host= socket directory included)."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    return {
        "host": host,
        "port": str(parts.port or 5432),
        "dbname": parts.path.lstrip("/") or "postgres",
        "user": parts.username or "postgres",
        "password": parts.password or "",
    }
