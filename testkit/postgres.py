"""Real PostgreSQL, never a mock: a fresh database per test or measurement on a server (random
name, dropped after), and a private embedded server (pgserver) when no other is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    # pg_ctl is made at import time (pgserver._commands._init()): mypy cannot see it.
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
    from pgserver.postgres_server import PostgresServer, get_server


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(server_url: str, template: str | None = None) -> str:
    """A new database with a random name: empty, or a copy of the database `template` names
    (CREATE DATABASE ... TEMPLATE copies its files: ~0.1 s against ~1 s to migrate anew)."""
    name = f"t_{secrets.token_hex(6)}"
    copied = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_execute(url_of_server(server_url), f'CREATE DATABASE "{name}"{copied}'))
    return with_database(server_url, name)


def name_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def drop_database(url: str) -> None:
    name = name_of(url)
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        asyncio.run(_execute(url_of_server(url), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def url_of_server(url: str) -> str:
    return with_database(url, "postgres")


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class EmbeddedPostgres:
    """A private pgserver instance that a test may stop and start (outage tests).

    Run as root, pgserver runs PostgreSQL as its own `pgserver` user, who must be able to reach
    pgdata at every pg_ctl. Under pytest's temporary directory it may not: every pytest session
    that starts on the machine resets /tmp/pytest-of-root to 0700, and a stop or start (or the
    first start, at the wrong moment) then fails with "Permission denied". So as root the data
    goes in a directory of its own under the system's temporary directory instead of `root`.
    `in_memory` puts that directory in shared memory when there is room (memory_directory).
    """

    def __init__(self, root: Path, *, in_memory: bool = False) -> None:
        place = memory_directory() if in_memory else None
        own = place is not None or os.geteuid() == 0
        self._own = Path(tempfile.mkdtemp(prefix="tracker-pg-", dir=place)) if own else None
        self.server = get_server((self._own or root) / "pgdata", cleanup_mode="delete")

    @property
    def url(self) -> str:
        return self.server.get_uri()

    def stop(self, mode: str = "fast") -> None:
        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        with PostgresServer._lock:  # noqa: SLF001 - pgserver's own lock around its starts
            self.server.ensure_postgres_running()

    def is_running(self) -> bool:
        try:
            pg_ctl(["status"], pgdata=self.server.pgdata, user=self.server.system_user)
        except subprocess.CalledProcessError:
            return False
        return True

    def cleanup(self) -> None:
        self.server.cleanup()
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)


SHARED_MEMORY = "/dev/shm"  # noqa: S108 - only ever holds mkdtemp's private directories


def memory_directory(needed: int = 1 << 30) -> str | None:
    """Shared memory (tmpfs) when it is there with room to spare, else None (a container's is
    often 64 MB).

    Tests create and drop a database of some 300 files each, hundreds of times a run. On ext4
    that churn makes each new file's inode slow to allocate (the kernel skips the recently
    deleted ones, block by block): CREATE DATABASE was seen to grow from 0.02 s to 0.3 s of CPU.
    On tmpfs it stays at 0.02 s. Benchmarks keep their data on disk, where durability costs
    what it costs in production.
    """
    try:
        found = os.statvfs(SHARED_MEMORY)
    except OSError:
        return None
    return SHARED_MEMORY if found.f_bavail * found.f_frsize >= needed else None


@contextlib.contextmanager
def embedded() -> Iterator[str]:
    """A private embedded PostgreSQL for as long as the block runs: its URL."""
    with tempfile.TemporaryDirectory(prefix="tracker-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        try:
            yield server.url
        finally:
            server.cleanup()
