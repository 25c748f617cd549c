"""The PostgreSQL every measurement shares: TRACKER_BENCH_DATABASE_URL, else a private embedded one.

All baselines and the tracker run on the same server, each in a fresh database, so their ratios
compare like with like. Settings are read and printed, never changed (synchronous_commit stays on).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from tests.support.postgres import EmbeddedPostgres, create_database, drop_database
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
    url = os.environ.get("TRACKER_BENCH_DATABASE_URL")
    if url:
        yield url, "TRACKER_BENCH_DATABASE_URL"
        return
    with tempfile.TemporaryDirectory(prefix="tracker-bench-pg-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp))
        try:
            yield embedded.url, "embedded (pgserver), started for this run"
        finally:
            embedded.cleanup()


@asynccontextmanager
async def fresh_database(server_url: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A new database on the server (migrated to the tracker's schema), dropped afterwards."""
    url = await asyncio.to_thread(create_database, server_url)
    try:
        if migrated:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        yield url
    finally:
        await asyncio.to_thread(drop_database, url)


async def settings(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in SETTINGS}
    finally:
        await conn.close()


async def count_events(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM events")
        return count
    finally:
        await conn.close()


async def postmaster(url: str) -> int | None:
    """The pid of the server's postmaster if it runs on this machine (a backend's parent)."""
    conn = await asyncpg.connect(url)
    try:
        backend: int = await conn.fetchval("SELECT pg_backend_pid()")
        return _postgres_parent(backend)  # while the backend is still there
    finally:
        await conn.close()


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
