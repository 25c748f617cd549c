"""Opening the database for a command or a server: connect, migrate, rebuild if a migration
replaced projection tables; waiting a while for a database that is still coming up."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from tracker.config import Settings
from tracker.store.database import Database
from tracker.store.errors import Unavailable, unavailable_on_failure
from tracker.store.migrations import migrate
from tracker.store.rebuild import PROJECTED
from tracker.store.replay import replay

log = logging.getLogger(__name__)

ANYTHING_PROJECTED = f"SELECT EXISTS (SELECT 1 FROM events WHERE {PROJECTED})"  # noqa: S608


async def open_migrated(url: str, settings: Settings) -> Database:
    """Open the pool and migrate, waiting up to `start_timeout` for the database to come up."""
    deadline = asyncio.get_running_loop().time() + settings.start_timeout
    while True:
        database = None
        try:
            database = await Database.open(
                url,
                timeout=settings.db_timeout,
                size=settings.pool_size,
                durable=not settings.allow_unsafe_durability,
            )
            with unavailable_on_failure("migrate"):
                async with database.pool.acquire() as conn:
                    await migrate(conn, rebuild=lambda: rebuild_projections(url))
        except Unavailable:
            if database is not None:
                await database.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("database not reachable yet; retrying")
            await asyncio.sleep(1)
            continue
        return database


async def rebuild_projections(url: str) -> None:
    """Fill freshly replaced projection tables from the log (nothing to do on an empty one)."""
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval(ANYTHING_PROJECTED):
            return
    finally:
        await conn.close()
    log.warning("a migration replaced the projection tables: rebuilding them from the log")
    outcome = await replay(url, check=False)
    log.warning(
        "rebuilt the projections from %s events in %.1f s", f"{outcome.events:,}", outcome.seconds
    )
