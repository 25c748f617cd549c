"""POST /v1/notifications: the one callback URL for every notification type.

200 only after the event's transaction has committed (deliveries that arrive together share one:
see `store/group_commit.py`); a refusal is stored before it is answered, so every delivery is
kept somewhere; if either cannot be stored, 503 and the platform retries.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import NoReturn

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from tracker import metrics
from tracker.documents import AcceptedDocument
from tracker.domain.delivery import Refusal, decode
from tracker.http import unrecognised
from tracker.http.errors import ApiError
from tracker.http.keys import APPENDS, DATABASE, SETTINGS
from tracker.http.metrics import observe_pool
from tracker.http.responses import document
from tracker.store import rejected
from tracker.store.errors import Unavailable, Unstorable

READ_CHUNK = 64 * 1024


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
    """Read at most `limit` bytes; past it, keep the prefix in `rejected` and answer 413.

    The whole body must arrive within TRACKER_BODY_TIMEOUT of the headers: aiohttp bounds no
    body read by itself, so a sender dribbling a byte a second would hold its connection and
    this handler for as long as it liked. Such a sender gets 408 and the connection is closed;
    like a sender that hangs up, it leaves no delivery to keep.
    """
    seconds = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(seconds if seconds > 0 else None):
            body, complete = await _read_up_to(request, limit)
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {seconds:g} s of the headers (TRACKER_BODY_TIMEOUT)",
            headers={"Connection": "close"},
        ) from None
    except (
        RequestPayloadError,
        aiohttp.ClientError,
        ConnectionError,
        asyncio.IncompleteReadError,
    ) as error:
        # The sender hung up or sent a broken encoding: there is no delivery to keep.
        raise ApiError(
            400, "incomplete_body", f"the body could not be read in full: {error}"
        ) from None
    if not complete:
        declared = request.content_length
        size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
        message = f"the body is {size}; the limit is {limit} bytes (TRACKER_MAX_BODY_BYTES)"
        await _refuse(
            request,
            rejected.Rejection(413, "body_too_large", message, [], body, truncated=True),
            received_at,
            headers={"Connection": "close"},
        )
    return body


async def _refuse(
    request: web.Request,
    rejection: rejected.Rejection,
    received_at: datetime,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    """Keep a refused delivery in `rejected` (if that fails: 503, and the platform retries),
    then answer the refusal."""
    prefix = request.app[SETTINGS].rejected_prefix_bytes
    await rejected.record(request.app[DATABASE], rejection, received_at, prefix)
    raise ApiError(
        rejection.status, rejection.code, rejection.reason, rejection.details, headers=headers
    )


async def _read_up_to(request: web.Request, limit: int) -> tuple[bytes, bool]:
    """(the body, True) if it fits in `limit`; else (its first `limit` bytes, False).

    Nothing past the limit is read: a body declared too large is not read beyond the prefix.
    """
    body = bytearray()
    declared = request.content_length
    if declared is not None and declared > limit:
        while len(body) < limit and (chunk := await request.content.read(limit - len(body))):
            body += chunk
        return bytes(body), False
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), False
    return bytes(body), True
