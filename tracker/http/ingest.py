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

from tracker import metrics
from tracker.documents import AcceptedDocument
from tracker.domain.delivery import Refusal, decode
from tracker.http import unrecognised
from tracker.http.body import CLOSE, content_encoding, read_body, too_large
from tracker.http.errors import ApiError
from tracker.http.keys import APPENDS, DATABASE, SETTINGS
from tracker.http.metrics import observe_pool
from tracker.http.responses import document
from tracker.store import rejected
from tracker.store.errors import Unavailable, Unstorable


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
    database = request.app[DATABASE]
    raw = await _read_body(request, request.app[SETTINGS].max_body_bytes, received_at)
    try:
        event = decode(raw)
    except Refusal as refusal:
        status = 400 if refusal.kind == "malformed" else 422
        kept = rejected.Rejection(status, refusal.code, refusal.message, refusal.details, raw)
        await _refuse(request, kept, received_at)
    await unrecognised.admit(request, event, received_at)  # its size cap and daily budget
    try:
        position = await request.app[APPENDS].append(event)
    except Unstorable as refused:
        # Valid to our models, refused by the database (a value past a column's limits): a
        # retry would fail the same way, so it is a refusal, kept like any other.
        message = f"the database cannot store this delivery: {refused}"
        await _refuse(request, rejected.Rejection(422, "unstorable", message, [], raw), received_at)
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
        await _refuse(request, kept, received_at, headers=None if body.complete else CLOSE)
    if not body.complete:
        message = f"{too_large(request, limit)} (TRACKER_MAX_BODY_BYTES)"
        await _refuse(
            request,
            rejected.Rejection(413, "body_too_large", message, [], body.data, truncated=True),
            received_at,
            headers=CLOSE,
        )
    return body.data


async def _refuse(
    request: web.Request,
    rejection: rejected.Rejection,
    received_at: datetime,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    """Keep a refused delivery in `rejected` (if that fails: 503, and the platform retries),
    then answer the refusal."""
    prefix = request.app[SETTINGS].rejected_prefix_bytes
    await rejected.keep(request.app[DATABASE], rejection, received_at, prefix)
    raise ApiError(
        rejection.status, rejection.code, rejection.reason, rejection.details, headers=headers
    )
