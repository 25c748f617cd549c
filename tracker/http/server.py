"""Running the application: one process, graceful on SIGTERM, with a log free of secrets."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from tracker.config import Settings
from tracker.http.access_log import RedactingAccessLogger
from tracker.http.app import create_app

log = logging.getLogger("tracker")


def run(settings: Settings, database_url: str) -> int:
    if settings.workers > 1:
        from tracker.http.workers import supervise  # noqa: PLC0415

        _warn_if_open(settings)
        return supervise(settings, database_url, settings.workers)
    if not settings.reuse_port:  # workers: the supervisor warned once already
        _warn_if_open(settings)
    app = create_app(settings, database_url)

    async def announce(_: web.Application) -> None:
        log.info("listening on http://%s:%d (pid %d)", settings.host, settings.port, os.getpid())

    app.on_startup.append(announce)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=settings.reuse_port or None,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=settings.shutdown_grace,
        print=None,
    )
    return 0


def _warn_if_open(settings: Settings) -> None:
    if settings.ingest_token is None:
        log.warning(
            "TRACKER_INGEST_TOKEN is unset: anyone who can reach this port can post notifications"
        )
    if settings.read_token is None:
        log.warning("TRACKER_READ_TOKEN is unset: the query API is open to anyone who can reach it")
