"""The connection pool, with every database call bounded in time and failures made `Unavailable`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from tracker.store.errors import unavailable_on_failure

# What a store function receives: a pooled connection (a proxy) or a plain one.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
Record = asyncpg.Record


@dataclass(frozen=True, slots=True)
class Database:
    pool: asyncpg.Pool
    timeout: float
    url: str
    # First come, first served: asyncpg's pool lets a newcomer take a freed connection ahead
    # of those already waiting, and under load some requests starved (GET p99 600 ms, p50 2 ms,
    # 32 clients on 10 connections). Waiting here, in order, keeps the tail short.
    turns: asyncio.Semaphore

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        timeout: float,
        size: int,
        plan_once: bool = False,
        durable: bool = True,
    ) -> Database:
        """`plan_once`: statements whose best plan does not depend on their values (the append
        path's) keep PostgreSQL's generic plan instead of being planned at every run.
        `durable`: every connection commits durably, whatever its role's defaults say
        (`_durable_commits`); False only where unsafe durability was allowed on purpose."""
        with unavailable_on_failure("connect"):
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=size,
                timeout=timeout,  # connect timeout: a dead host must not outlast our answer
                command_timeout=timeout,
                server_settings={
                    "application_name": "tracker",
                    # Plan every statement for its own values. A statement reused is otherwise
                    # planned once for any values after five runs, from average selectivity:
                    # "app_id = $1" then looks as common as the average application, and a list
                    # page for a rare one can walk the whole fleet (store/listing.py). Planning
                    # costs 0.2-3 ms a page; an append batch, a fraction of its commit.
                    "plan_cache_mode": "auto" if plan_once else "force_custom_plan",
                },
                reset=_keep_session,
                init=_durable_commits if durable else None,
            )
        return cls(pool, timeout, dsn, asyncio.Semaphore(size))

    async def close(self) -> None:
        """Close gracefully, but never hang a shutdown on a database that went away."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.pool.close()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self.pool.terminate()

    @asynccontextmanager
    async def transaction(self, what: str) -> AsyncIterator[Connection]:
        """One transaction, start to commit, inside `timeout`; any failure is `Unavailable`.

        The caller's statements run inside the deadline too, so the answer (200 or 503) always
        comes within `timeout` plus scheduling: well inside the platforms' 15 s.
        """
        with unavailable_on_failure(what):
            async with (
                asyncio.timeout(self.timeout),
                self.turns,
                self.pool.acquire() as conn,
                conn.transaction(),
            ):
                yield conn

    async def fetch(self, what: str, query: str, *args: object) -> list[Record]:
        with unavailable_on_failure(what):
            async with asyncio.timeout(self.timeout), self.turns:
                return await self.pool.fetch(query, *args)

    async def fetchrow(self, what: str, query: str, *args: object) -> Record | None:
        with unavailable_on_failure(what):
            async with asyncio.timeout(self.timeout), self.turns:
                return await self.pool.fetchrow(query, *args)


async def _keep_session(_: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (UNLISTEN, RESET ALL...): one round trip per request.

    Nothing here leaves session state behind: locks are transaction-scoped, settings are
    SET LOCAL, and LISTEN lives on the feed's own connection, outside the pool.
    """


async def _durable_commits(conn: asyncpg.Connection) -> None:
    """A 200 means committed to disk: checked at start (store/durability.py), and pinned here
    on every connection opened later, because a role may change its own defaults at any time
    (`ALTER ROLE CURRENT_USER SET synchronous_commit = off`) and every new session would take
    them. A stronger setting (`remote_apply`, say) is kept."""
    if await conn.fetchval("SELECT current_setting('synchronous_commit')") == "off":
        await conn.execute("SET synchronous_commit = on")
