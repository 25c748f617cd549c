"""The pool's contract with its callers: a database that goes away is `Unavailable`, never a bug."""

from __future__ import annotations

import asyncio
import collections

import asyncpg
import pytest

from tracker.store.database import Database
from tracker.store.errors import Unavailable

ATTEMPTS = 30


async def test_a_session_ended_before_commit_is_unavailable_however_the_driver_sees_it(
    database: Database, database_url: str
) -> None:
    """A fast shutdown ends every session, possibly between a transaction's last statement and
    its COMMIT. Depending on how far asyncpg got with the server's FATAL and the socket's close,
    the COMMIT fails with a connection error, an InterfaceError, or an InternalClientError
    ("cannot switch to state 15; another operation (2) is in progress"). Each means the
    database went away, so each must reach the caller as `Unavailable` (a 503), never as a bug
    (a 500): CI once caught a 500 from exactly this during a PostgreSQL restart under load.
    """
    causes: collections.Counter[str] = collections.Counter()
    admin = await asyncpg.connect(database_url)

    async def end_the_session_before_commit() -> None:
        async with database.transaction("test") as conn:
            await conn.execute("SELECT 1")
            await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            await asyncio.sleep(0)  # let the FATAL in, maybe not yet the close

    try:
        for _ in range(ATTEMPTS):
            with pytest.raises(Unavailable) as raised:
                await end_the_session_before_commit()
            causes[type(raised.value.__cause__).__name__] += 1
    finally:
        await admin.close()
    print(f"\nwhat the driver raised over {ATTEMPTS} ended sessions: {dict(causes)}")
    # The pool drops the dead connections and serves again at once.
    async with database.transaction("after") as conn:
        assert await conn.fetchval("SELECT 1") == 1
