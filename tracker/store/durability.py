"""Durability is checked, not assumed: a 200 means committed, and a commit means on disk only if
PostgreSQL flushes it. With `fsync=off` or `synchronous_commit=off` a crash of the database (not
of ours) loses commits we already answered 200 to, so `tracker serve` refuses to start on such a
database unless told `--allow-unsafe-durability` (a test bench, a throw-away demo)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from tracker.store.database import Connection, Database
from tracker.store.errors import unavailable_on_failure

log = logging.getLogger(__name__)

READ = """
SELECT current_setting('fsync') AS fsync,
       current_setting('synchronous_commit') AS synchronous_commit,
       current_setting('full_page_writes') AS full_page_writes
"""


class UnsafeDurability(Exception):  # noqa: N818 - reads as "the database's durability is unsafe"
    """The database would acknowledge commits it may lose."""


@dataclass(frozen=True, slots=True)
class Durability:
    """The settings of a session of ours (the server's, the database's, the role's defaults)."""

    fsync: str
    synchronous_commit: str
    full_page_writes: str

    def unsafe(self) -> list[str]:
        """What would lose acknowledged commits in a crash. (`synchronous_commit=local` waits
        for the local flush: durable here, only not yet on a standby.)"""
        found = []
        if self.fsync == "off":
            found.append("fsync=off")
        if self.synchronous_commit == "off":
            found.append("synchronous_commit=off")
        return found

    def __str__(self) -> str:
        return (
            f"fsync={self.fsync}, synchronous_commit={self.synchronous_commit}, "
            f"full_page_writes={self.full_page_writes}"
        )


async def durability(conn: Connection) -> Durability:
    row = await conn.fetchrow(READ)
    assert row is not None  # noqa: S101 - a SELECT without FROM returns one row
    return Durability(row["fsync"], row["synchronous_commit"], row["full_page_writes"])


async def checked(db: Database, *, allow_unsafe: bool) -> Durability:
    """The server's settings, logged; `UnsafeDurability` if they would lose acknowledged commits
    and that was not allowed on purpose."""
    # On a connection of its own: the pool's pin durable commits (store/database.py), and what
    # is checked here is what the database and the role would give a session left alone.
    with unavailable_on_failure("check durability"):
        conn = await asyncpg.connect(db.url, timeout=db.timeout)
        try:
            found = await durability(conn)
        finally:
            await conn.close()
    unsafe = found.unsafe()
    if unsafe and not allow_unsafe:
        raise UnsafeDurability(
            "the database would lose commits already answered 200 if it crashed "
            f"({', '.join(unsafe)}): refusing to serve; fix it, or pass "
            "--allow-unsafe-durability (TRACKER_ALLOW_UNSAFE_DURABILITY=1) for a test bench"
        )
    if unsafe:
        log.warning("database durability: %s; UNSAFE, allowed on purpose", found)
    else:
        log.info("database durability: %s", found)
    return found
