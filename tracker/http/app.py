"""The composition root for HTTP: settings and a database URL in, a ready application out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from tracker import metrics
from tracker.amqp.endpoint import Endpoint, endpoint
from tracker.config import Settings, refuse_short_tokens
from tracker.http import openapi
from tracker.http.attempts import ATTEMPTS, FailedAttempts
from tracker.http.auth import GUARDS, Guard, require_tokens
from tracker.http.errors import json_errors
from tracker.http.forwarded import trust_forwarded
from tracker.http.keys import (
    AMQP,
    APPENDS,
    DATABASE,
    FEED_DATABASE,
    LISTENER,
    SETTINGS,
    STOPPING,
    STREAMS,
)
from tracker.http.protocol import close_unread_bodies, handler_args, serve_with_our_handler
from tracker.http.routes import ROUTES
from tracker.http.sanity import refuse_nul
from tracker.http.session import keep_session_keys
from tracker.iotda.budget import Budget
from tracker.iotda.credentials import Credentials
from tracker.iotda.settings import app_ids, credentials
from tracker.store.database import Database
from tracker.store.feed import Announcer, Listener
from tracker.store.group_commit import FLUSHERS, GroupCommit
from tracker.store.preflight import preflight
from tracker.store.startup import open_migrated

logger = logging.getLogger(__name__)


def create_app(settings: Settings, database_url: str) -> web.Application:
    refuse_short_tokens(settings)  # here, so that no way of starting a server skips it
    proxied = [trust_forwarded] if settings.trust_proxy else []  # outermost: all see its view
    app = web.Application(
        middlewares=[*proxied, close_unread_bodies, json_errors, require_tokens, refuse_nul],
        client_max_size=settings.max_body_bytes,
        handler_args=handler_args(settings),
    )
    app[SETTINGS] = settings
    app[ATTEMPTS] = FailedAttempts()
    app[STOPPING] = asyncio.Event()
    app.cleanup_ctx.append(_database(settings, database_url))
    app.cleanup_ctx.append(keep_session_keys)  # after the database: it reads the keys there
    amqp = endpoint(settings)
    if amqp is not None:  # after the database: it stops first, while appends still commit
        app.cleanup_ctx.append(_consume(amqp, settings))
    platform = credentials(settings)
    # One request budget for everything this process asks IoTDA: the reconciler's reads and
    # the guards' StopBatchTask calls (the tenant's limit does not tell them apart).
    budget = None
    if platform is not None:  # likewise
        budget = Budget(settings.iotda_rate)
        app.cleanup_ctx.append(_reconcile(platform, budget, settings))
    app.cleanup_ctx.append(_guard(platform, budget, settings))
    app.on_shutdown.append(_end_live_feeds)
    setup_routes(app)
    serve_with_our_handler(app)
    return app


def setup_routes(app: web.Application) -> None:
    """The routes of the table, each with its guard (http/auth.py decides access from these)."""
    guards: dict[AbstractRoute, Guard] = {}
    for operation in (*ROUTES, openapi.SELF):  # the document of the table, too
        # Path parameters take any character but "/": aiohttp's default also refuses braces,
        # and an id such as "${jndi:x}" must be readable like any other.
        path = re.sub(r"\{(\w+)\}", r"{\1:[^/]+}", operation.path)
        route = app.router.add_route(operation.method, path, operation.handler)
        guards[route] = operation.guard
    app[GUARDS] = guards


async def _end_live_feeds(app: web.Application) -> None:
    """Shutdown waits for open requests; live feeds would never end by themselves."""
    app[STOPPING].set()


def _consume(
    amqp: Endpoint, settings: Settings
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def consume(app: web.Application) -> AsyncIterator[None]:
        from tracker.amqp.consumer import Consumer  # noqa: PLC0415 - it loads proton

        consumer = Consumer(amqp, settings, app[DATABASE], app[APPENDS])
        app[AMQP] = consumer
        running = asyncio.create_task(consumer.run(), name="amqp consumer")
        yield
        await consumer.stop(settings.shutdown_grace)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    return consume


def _reconcile(
    platform: Credentials, budget: Budget, settings: Settings
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def reconcile(app: web.Application) -> AsyncIterator[None]:
        from tracker.iotda.api import PlatformApi  # noqa: PLC0415 - it loads Huawei's SDK
        from tracker.iotda.reconciler import Reconciler  # noqa: PLC0415

        api = PlatformApi(platform)
        metrics.IOTDA_BUDGET.set(settings.iotda_rate)
        reconciler = Reconciler(app[DATABASE], api, budget, app[APPENDS], app_ids(settings))
        running = asyncio.create_task(reconciler.run(), name="iotda reconciler")
        yield
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await api.close()

    return reconcile


def _guard(
    platform: Credentials | None, budget: Budget | None, settings: Settings
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The guards' work beside the appends: the clock (stuck, silence), the webhooks' deliveries,
    and the StopBatchTask calls owed. Each process runs them; rows are claimed, never shared."""

    async def guard(app: web.Application) -> AsyncIterator[None]:
        from tracker.alerts.clock import Clock  # noqa: PLC0415 - keep `tracker --help` fast
        from tracker.alerts.stopper import Stopper  # noqa: PLC0415
        from tracker.webhooks.deliverer import Deliverer  # noqa: PLC0415

        api = None
        if platform is not None:
            from tracker.iotda.api import PlatformApi  # noqa: PLC0415 - it loads Huawei's SDK

            api = PlatformApi(platform)
        database = app[DATABASE]
        running = [
            asyncio.create_task(Clock(database, settings.guard_clock).run(), name="guards' clock"),
            asyncio.create_task(Deliverer(database, settings).run(), name="webhooks"),
            asyncio.create_task(Stopper(database, api, budget=budget).run(), name="guard stops"),
        ]
        yield
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if api is not None:
            await api.close()

    return guard


def _database(settings: Settings, url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_and_migrate(app: web.Application) -> AsyncIterator[None]:
        database = await open_migrated(url, settings)
        try:
            await preflight(database, settings)
        except BaseException:
            await database.close()
            raise
        app[DATABASE] = database
        app[FEED_DATABASE] = await Database.open(
            url, timeout=settings.db_timeout, size=settings.feed_pool_size
        )
        app[STREAMS] = set()
        announcer = Announcer(database)
        # Appends on connections of their own, one per batch in flight, planned once: the
        # append and its projection's loads and writes find rows by key, whatever the values.
        appending = await Database.open(
            url,
            timeout=settings.db_timeout,
            size=FLUSHERS,
            plan_once=True,
            durable=not settings.allow_unsafe_durability,
        )
        app[APPENDS] = GroupCommit(
            appending, on_commit=metrics.COMMIT_BATCH.observe, on_projected=announcer.poke
        )
        app[LISTENER] = Listener(url)
        app[LISTENER].start()
        yield
        await app[APPENDS].close()
        await announcer.drain()
        await appending.close()
        await app[LISTENER].stop()
        await app[FEED_DATABASE].close()
        await database.close()

    return open_and_migrate
