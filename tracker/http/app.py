"""The composition root for HTTP: settings and a database URL in, a ready application out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from tracker.config import Settings
from tracker.http.auth import require_tokens
from tracker.http.errors import json_errors
from tracker.http.keys import DATABASE, SETTINGS
from tracker.http.openapi import get_openapi
from tracker.http.routes import OPERATIONS
from tracker.http.sanity import refuse_nul
from tracker.store.database import Database
from tracker.store.errors import Unavailable, unavailable_on_failure
from tracker.store.migrations import migrate

logger = logging.getLogger(__name__)


def create_app(settings: Settings, database_url: str) -> web.Application:
    app = web.Application(middlewares=[json_errors, require_tokens, refuse_nul])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database(settings, database_url))
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    for operation in OPERATIONS:
        app.router.add_route(operation.method, operation.path, operation.handler)
    app.router.add_get("/v1/openapi.json", get_openapi)


def _database(settings: Settings, url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_and_migrate(app: web.Application) -> AsyncIterator[None]:
        database = await connect(url, settings)
        app[DATABASE] = database
        yield
        await database.close()

    return open_and_migrate


async def connect(url: str, settings: Settings) -> Database:
    """Open the pool and migrate, waiting up to `start_timeout` for the database to come up."""
    deadline = asyncio.get_running_loop().time() + settings.start_timeout
    while True:
        try:
            database = await Database.open(
                url, timeout=settings.db_timeout, size=settings.pool_size
            )
        except Unavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            logger.warning("database not reachable yet; retrying")
            await asyncio.sleep(1)
            continue
        try:
            with unavailable_on_failure("migrate"):
                async with database.pool.acquire() as conn:
                    await migrate(conn)
        except Unavailable:
            await database.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            logger.warning("database not reachable yet; retrying")
            await asyncio.sleep(1)
            continue
        return database
