"""Reading the log and the refusals: GET /v1/events, /v1/events/{position}/raw, /v1/rejected."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import orjson
from aiohttp import web
from pydantic import Field

from tracker.documents import RejectedDocument
from tracker.http import responses
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE
from tracker.http.paging import cursor_after, encode_cursor, resume_after
from tracker.http.parameters import (
    DEFAULT_LIMIT,
    MAX_BIGINT,
    After,
    Cursor,
    Limit,
    Query,
    choice,
    whole_number,
)
from tracker.store import events, rejected
from tracker.store.errors import NotFound


class EventsQuery(Query):
    after: After = 0
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None

    @classmethod
    def given(cls, request: web.Request) -> dict[str, str]:
        """A cursor holds the position to resume after: `?after=` is then not read at all."""
        given = super().given(request)
        if "cursor" in given:
            given.pop("after", None)
        return given


async def list_events(request: web.Request) -> web.Response:
    """Events after a position, oldest first. Pages never skip a late commit (see store.events)."""
    query = EventsQuery.of(request)
    after = resume_after(query.cursor, query.after)
    page, more = await events.read_page(request.app[DATABASE], after, query.limit)
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
    if position is None:
        raise NotFound(f"no event at position {text}")
    try:
        raw = await events.read_raw(request.app[DATABASE], position)
    except events.Pruned as pruned:
        raise ApiError(410, "body_pruned", f"{pruned}: see tracker prune-unrecognised") from None
    return web.Response(body=raw, content_type="application/json")


class RejectedQuery(Query):
    after: After = 0
    order: Annotated[
        Literal["oldest", "newest"],
        choice(("oldest", "newest")),
        Field(
            description="newest: the latest refusals first (`after` is then ignored; the cursor "
            "goes on backwards)"
        ),
    ] = "oldest"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


async def list_rejected(request: web.Request) -> web.Response:
    query = RejectedQuery.of(request)
    if query.order == "newest":  # from the cursor, else from the latest
        after = cursor_after(query.cursor) or MAX_BIGINT
    else:
        after = resume_after(query.cursor, query.after)
    page, more = await rejected.read_page(
        request.app[DATABASE], after, query.limit, newest_first=query.order == "newest"
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
