"""Running the application: one process, graceful on SIGTERM, with a log free of secrets."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from tracker.amqp.endpoint import check_client, endpoint
from tracker.config import Settings, is_loopback
from tracker.http.access_log import RedactingAccessLogger
from tracker.http.app import create_app
from tracker.http.connections import connection_cap, raise_file_limit
from tracker.http.malformed import snippet
from tracker.iotda.settings import credentials
from tracker.logs import mask_secrets_in_logs
from tracker.store.group_commit import FLUSHERS

log = logging.getLogger("tracker")


def run(settings: Settings, database_url: str) -> int:
    mask_secrets_in_logs(settings)  # first: every line from here on, in every process
    tls = tls_context(settings)  # before anything starts: a bad certificate fails at once
    amqp = endpoint(settings)  # likewise a bad AMQP setting, or a missing client
    if amqp is not None:
        check_client(amqp)
        if not amqp.verify and amqp.tls:
            log.warning(
                "--insecure-amqp-tls: the AMQP broker's certificate is NOT verified; anyone on "
                "the path can read and forge notifications"
            )
    credentials(settings)  # likewise a half-configured IoTDA reconciler
    if settings.workers > 1:
        from tracker.http.workers import supervise  # noqa: PLC0415

        _warn_if_open(settings)
        return supervise(settings, database_url, settings.workers)
    if not settings.reuse_port:  # workers: the supervisor warned once already
        _warn_if_open(settings)
    settings = _within_file_limit(settings)
    app = create_app(settings, database_url)

    scheme = "https" if tls else "http"

    async def announce(_: web.Application) -> None:
        log.info(
            "listening on %s://%s:%d (pid %d), at most %d connections",
            scheme,
            settings.host,
            settings.port,
            os.getpid(),
            settings.max_connections,
        )

    app.on_startup.append(announce)
    logging.getLogger("aiohttp.server").addFilter(_MalformedRequestsAreNotErrors())
    _use_uvloop()
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=settings.reuse_port or None,
        ssl_context=tls,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=settings.shutdown_grace,
        print=None,
    )
    return 0


class _MalformedRequestsAreNotErrors(logging.Filter):
    """A request aiohttp cannot parse (oversized headers, garbage, TLS on the HTTP port) is the
    sender's mistake: one INFO line, no traceback. Left as is, each one is an ERROR with a
    traceback, and a hostile client could fill the disk with them."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = "malformed request refused: %s", (snippet(str(error)),)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _within_file_limit(settings: Settings) -> Settings:
    """Raise the open-file limit and keep the connection cap under it, so the cap is what a
    flood of connections meets, not a failing accept()."""
    files = raise_file_limit()
    reserved = settings.pool_size + settings.feed_pool_size + FLUSHERS + 1  # pools, listener
    cap = connection_cap(settings.max_connections, files, reserved)
    if cap < settings.max_connections:
        log.warning(
            "TRACKER_MAX_CONNECTIONS=%d lowered to %d: the open-file limit is %d",
            settings.max_connections,
            cap,
            files,
        )
    return settings.with_overrides(max_connections=cap)


class HalfTls(Exception):  # noqa: N818 - reads as "only half of TLS was given"
    """A certificate without its key, or a key without its certificate: a usage error (exit 2)."""


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS when a certificate and its key are both given; one without the other is an error."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise HalfTls("TLS needs both --tls-cert and --tls-key (TRACKER_TLS_CERT, TRACKER_TLS_KEY)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise SystemExit(f"cannot load the TLS certificate or key: {error}") from None
    return context


def _use_uvloop() -> None:
    """uvloop's event loop, where installed: measured in bench/, it serves more per core."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _warn_if_open(settings: Settings) -> None:
    who = (
        "anything on this machine"
        if settings.host is not None and is_loopback(settings.host)
        else "ANYONE who can reach this port (--insecure-open)"
    )
    if settings.ingest_token is None:
        log.warning("TRACKER_INGEST_TOKEN is unset: %s can post notifications", who)
    if settings.read_token is None:
        log.warning("TRACKER_READ_TOKEN is unset: %s can read everything", who)
