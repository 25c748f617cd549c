"""Reading the log and the refusals: GET /v1/events, /v1/events/{position}/raw, /v1/rejected."""

from __future__ import annotations

import base64

import orjson
from aiohttp import web

from tracker.documents import RejectedDocument
from tracker.http import responses
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE
from tracker.http.paging import (
    MAX_BIGINT,
    cursor_after,
    encode_cursor,
    limit_of,
    one_of,
    resume_after,
    whole_number,
)
from tracker.store import events, rejected


async def list_events(request: web.Request) -> web.Response:
    """Events after a position, oldest first. Pages never skip a late commit (see store.events)."""
    page, more = await events.read_page(
        request.app[DATABASE], resume_after(request), limit_of(request)
    )
    items = [_event_item(event) for event in page]
    cursor = encode_cursor(page[-1].position) if more else None
    body = b'{"items":[' + b",".join(items) + b'],"next_cursor":' + orjson.dumps(cursor) + b"}"
    return web.Response(body=body, content_type="application/json")


def _event_item(event: events.LoggedEvent) -> bytes:
    # The payload is the body exactly as received: its bytes (valid JSON, checked on the way in)
    # are spliced in rather than re-serialised, so whitespace, key order and numbers survive.
    meta = orjson.dumps(
        {
            "position": event.position,
            "event_type": event.event_type,
            "stream_type": event.stream_type,
            "stream_id": event.stream_id,
            "received_at": event.received_at,
            "occurred_at": event.occurred_at,
            "readmitted_from": event.readmitted_from,
            "pruned": event.pruned,
        }
    )
    # A pruned body is no longer in the log (`tracker prune-unrecognised` archived it).
    return meta[:-1] + b',"payload":' + (b"null" if event.pruned else event.raw) + b"}"


async def event_raw(request: web.Request) -> web.Response:
    """The exact bytes of one delivery, byte for byte."""
    text = request.match_info["position"]
    position = whole_number(text)
    try:
        raw = None if position is None else await events.read_raw(request.app[DATABASE], position)
    except events.Pruned as pruned:
        raise ApiError(410, "body_pruned", f"{pruned}: see tracker prune-unrecognised") from None
    if raw is None:
        raise ApiError(404, "not_found", f"no event at position {text}")
    return web.Response(body=raw, content_type="application/json")


async def list_rejected(request: web.Request) -> web.Response:
    newest_first = one_of(request, "order", ("oldest", "newest")) == "newest"
    after = resume_after(request)  # checked either way; newest first starts at the cursor
    if newest_first:
        after = cursor_after(request) or MAX_BIGINT
    page, more = await rejected.read_page(
        request.app[DATABASE],
        after,
        limit_of(request),
        newest_first=newest_first,
    )
    cursor = encode_cursor(page[-1].id) if more else None
    return responses.page([_rejected_item(item) for item in page], cursor)


def _rejected_item(item: rejected.RejectedDelivery) -> RejectedDocument:
    try:
        text: str | None = item.raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return RejectedDocument(
        id=item.id,
        received_at=item.received_at,
        status=item.status,
        code=item.code,
        reason=item.reason,
        details=item.details,
        truncated=item.truncated,
        body=text,  # null when the bytes are not UTF-8; body_base64 always has them
        body_base64=base64.b64encode(item.raw).decode(),
        size=item.size,
        sha256=None if item.sha256 is None else item.sha256.hex(),
        readmitted_position=item.readmitted_position,
    )
