"""POST /v1/notifications: the one callback URL for every notification type.

200 only after the event's transaction has committed (deliveries that arrive together share one:
see `store/group_commit.py`); a refusal is stored before it is answered, so every delivery is
kept somewhere; if either cannot be stored, 503 and the platform retries.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import NoReturn

from aiohttp import web

from tracker import intake, metrics
from tracker.documents import AcceptedDocument
from tracker.http.body import CLOSE, content_encoding, read_body, too_large
from tracker.http.errors import ApiError
from tracker.http.keys import APPENDS, DATABASE, SETTINGS
from tracker.http.metrics import observe_pool
from tracker.http.responses import document
from tracker.store import rejected
from tracker.store.errors import Unavailable


async def receive_notification(request: web.Request) -> web.Response:
    started = time.perf_counter()
    metrics.RECEIVED.inc()
    try:
        return await _receive(request)
    except ApiError as error:
        metrics.REJECTED.labels(error.code).inc()
        raise
    except Unavailable:
        metrics.FAILED.labels("database_unavailable").inc()
        raise
    finally:
        metrics.INGEST_SECONDS.observe(time.perf_counter() - started)


async def _receive(request: web.Request) -> web.Response:
    received_at = datetime.now(UTC)
    database, settings = request.app[DATABASE], request.app[SETTINGS]
    raw = await _read_body(request, settings.max_body_bytes, received_at)
    event = intake.examine(raw)
    if isinstance(event, intake.Refused):
        await _refuse(request, event, received_at)
    # The configured token, not the presented one: the auth middleware has let only it through,
    # and with no token set a sender must not open a fresh budget by naming a new one.
    sender = intake.Sender(settings.ingest_token, "this ingest token")
    refused = await intake.admit(database, settings, event, sender)
    if refused is not None:
        await _refuse(request, refused, received_at)
    position = await intake.append(request.app[APPENDS], event)
    if isinstance(position, intake.Refused):
        await _refuse(request, position, received_at)
    metrics.ACCEPTED.labels(event.event_type if event.notification else "unrecognised").inc()
    observe_pool(database)
    return document(
        AcceptedDocument(
            position=position,
            event_type=event.event_type,
            stream_type=event.stream_type,
            stream_id=event.stream_id,
            recognised=event.notification is not None,
        )
    )


async def _read_body(request: web.Request, limit: int, received_at: datetime) -> bytes:
    """Read at most `limit` bytes within the body deadline (http/body.py); past the limit, or
    compressed, keep what was read in `rejected` and refuse (413, 415)."""
    encoding = content_encoding(request)
    body = await read_body(request, limit)
    if encoding is not None:
        # Kept like any refusal: only a holder of the ingest token gets this far, so it is the
        # platform (or a proxy in front of us) starting to compress; the operator must see it,
        # and the platform does not retry a 4xx. Kept as received, never inflated.
        message = (
            f"the body is {encoding}-encoded; send it uncompressed (Content-Encoding: identity)"
        )
        kept = rejected.Rejection(
            415, "unsupported_encoding", message, [], body.data, truncated=not body.complete
        )
        await _refuse(request, intake.Refused(kept), received_at, None if body.complete else CLOSE)
    if not body.complete:
        message = f"{too_large(request, limit)} (TRACKER_MAX_BODY_BYTES)"
        kept = rejected.Rejection(413, "body_too_large", message, [], body.data, truncated=True)
        await _refuse(request, intake.Refused(kept), received_at, CLOSE)
    return body.data


async def _refuse(
    request: web.Request,
    refused: intake.Refused,
    received_at: datetime,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    """Keep a refused delivery in `rejected` (if that fails: 503, and the platform retries),
    then answer the refusal."""
    await intake.keep(request.app[DATABASE], request.app[SETTINGS], refused, received_at)
    if refused.retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(refused.retry_after)}
    kept = refused.rejection
    raise ApiError(kept.status, kept.code, kept.reason, kept.details, headers=headers)
