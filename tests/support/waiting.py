"""Waiting for something to happen, never for a while (issue 22, item 7).

A test that sleeps and then looks passes only if the machine was fast enough, and says nothing
about what it waited for when it was not. These poll what the code under test makes observable
(a lock request in pg_locks, a counter, a connection the server holds) until it shows, and fail
after a bound with a message naming what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

import asyncpg

EVERY = 0.01  # seconds between looks: far below anything a test waits for


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, *, within: float = 10.0
) -> None:
    """Return as soon as `condition()` holds; fail after `within` seconds naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"waited {within:g} s for {what}")
        await asyncio.sleep(EVERY)


# Sessions of this database waiting for a lock: any lock, or the advisory lock of one 64-bit key
# (pg_locks shows such a key as classid, its high half, and objid, its low; objsubid 1). Other
# tests' databases on the same server are not counted: some locks carry no database, so the
# waiting session's is used.
LOCK_WAITERS = """
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
  AND ($1::bigint IS NULL
       OR (l.locktype = 'advisory' AND l.objsubid = 1
           AND (l.classid::bigint << 32 | l.objid::bigint) = $1))
"""


async def lock_waiters(db: asyncpg.Pool | asyncpg.Connection, key: int | None = None) -> int:
    """Sessions of this database waiting for a lock (the advisory lock `key`, if given)."""
    count: int = await db.fetchval(LOCK_WAITERS, key)
    return count


async def until_waiting_for_lock(
    db: asyncpg.Pool | asyncpg.Connection,
    *,
    key: int | None = None,
    sessions: int = 1,
    unless_done: Collection[asyncio.Future[Any]] = (),
    within: float = 10.0,
) -> None:
    """Until at least `sessions` sessions wait for a lock (the advisory lock `key`, if given):
    the moment a statement is known to have reached the lock a test holds.

    `unless_done`: the tasks expected to wait. If one finishes instead (the bug a test looks
    for), this returns at once, and the test's own assert says what went wrong."""
    named = "a lock" if key is None else f"advisory lock {key:#x}"

    async def waiting() -> bool:
        if any(task.done() for task in unless_done):
            return True
        return await lock_waiters(db, key) >= sessions

    await until(waiting, f"{sessions} session(s) waiting for {named}", within=within)


LISTENING = "0A"  # the socket state /proc/net/tcp gives a listening socket


def connections_held(pid: int, port: int) -> int:
    """TCP connections on local `port` that process `pid` has accepted and not yet closed.

    What a server process holds is what counts against its connection cap, and no API of its
    own shows it: its open sockets (/proc/PID/fd) on that port (/proc/net/tcp) do. A connection
    the client closed stays held until the server closes its side. Linux only, as /proc is.
    """
    sockets: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except FileNotFoundError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    held = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state != LISTENING:
                held += inode in sockets
    return held
