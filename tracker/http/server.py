"""Running the application: one process, graceful on SIGTERM, with a log free of secrets."""

from __future__ import annotations

import logging

from aiohttp import web

from tracker.config import Settings
from tracker.http.access_log import RedactingAccessLogger
from tracker.http.app import create_app

log = logging.getLogger("tracker")


def run(settings: Settings, database_url: str) -> int:
    if settings.ingest_token is None:
        log.warning(
            "TRACKER_INGEST_TOKEN is unset: anyone who can reach this port can post notifications"
        )
    if settings.read_token is None:
        log.warning("TRACKER_READ_TOKEN is unset: the query API is open to anyone who can reach it")
    app = create_app(settings, database_url)

    async def announce(_: web.Application) -> None:
        log.info("listening on http://%s:%d", settings.host, settings.port)

    app.on_startup.append(announce)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=settings.shutdown_grace,
        print=None,
    )
    return 0
