"""GET /v1/stream: transitions and results as server-sent events, as they commit; resumable.

Each event's `id` is its log position. A client that reconnects with `Last-Event-ID` (every
browser EventSource does) resumes right after it, and misses nothing: see store/feed.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import orjson
from aiohttp import web
from pydantic import Field

from tracker.documents import FeedAlert, FeedDeviceTransition, FeedTaskTransition
from tracker.http.errors import ApiError
from tracker.http.keys import FEED_DATABASE, LISTENER, SETTINGS, STOPPING, STREAMS
from tracker.http.parameters import MAX_BIGINT, TEXT, Parameter, Query, whole_number
from tracker.store import feed, horizon
from tracker.store.errors import Unavailable

KEEP_ALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing us


class StreamQuery(Query):
    operation_id: Annotated[
        str | None, TEXT, Field(description="only this operation's devices and alerts")
    ] = None
    device_id: Annotated[str | None, TEXT, Field(description="only this device")] = None
    after: Annotated[
        int | None,
        Parameter(
            whole_number,
            {"type": "integer", "minimum": 0, "maximum": MAX_BIGINT},
            "Last-Event-ID or {name} must be a log position; got {raw!r}",
        ),
        Field(
            description="resume after this log position (or send Last-Event-ID); default: from now"
        ),
    ] = None

    @classmethod
    def given(cls, request: web.Request) -> dict[str, str]:
        """As the query says, but Last-Event-ID (a reconnecting EventSource's) wins."""
        given = super().given(request)
        if resume := request.headers.get("Last-Event-ID"):
            given["after"] = resume
        return given


async def stream_transitions(request: web.Request) -> web.StreamResponse:
    streams, cap = request.app[STREAMS], request.app[SETTINGS].stream_clients
    if len(streams) >= cap:
        raise ApiError(
            503,
            "too_many_streams",
            f"{cap} live feeds are open on this server (TRACKER_STREAM_CLIENTS); retry later",
            headers={"Retry-After": "5"},
        )
    query = StreamQuery.of(request)
    token = object()
    streams.add(token)
    try:
        return await _stream(request, query)
    finally:
        streams.discard(token)


async def _stream(request: web.Request, query: StreamQuery) -> web.StreamResponse:
    """Resume after Last-Event-ID or ?after=; without either, start from the present: the
    log's horizon, so that an append still in flight below the last position is not lost."""
    database, listener = request.app[FEED_DATABASE], request.app[LISTENER]
    position = await horizon.read(database) if query.after is None else query.after
    only = feed.Filter(query.operation_id, query.device_id)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    quiet_since = time.monotonic()
    stopping = request.app[STOPPING]
    while not stopping.is_set():
        try:
            async for item in feed.follow(database, listener, position, only):
                if stopping.is_set():
                    break
                if item is None:
                    if time.monotonic() - quiet_since > KEEP_ALIVE:
                        await response.write(b": keep-alive\n\n")
                        quiet_since = time.monotonic()
                    continue
                await response.write(_event(item))
                position, quiet_since = item.position, time.monotonic()
        except Unavailable:
            await response.write(b": database unavailable; retrying\n\n")
            await asyncio.sleep(1)
        except ConnectionResetError:
            break  # the client went away
    return response


def _event(item: feed.FeedItem) -> bytes:
    if item.stream_type == "alert":
        reading = orjson.loads(item.result or "{}")
        name = b"alert"
        data = FeedAlert(
            position=item.position,
            id=f"{item.stream_id}:{item.operation_id}:{item.track}:{reading['number']}",
            guard=item.stream_id,
            operation_id=item.operation_id or "",
            track=item.track,
            app_id=reading["app_id"],
            state=item.to_value,
            value=reading["value"],
            threshold=reading["threshold"],
            at=item.event_time,
            received_at=item.received_at,
        ).to_json()
    elif item.stream_type == "device":
        name = b"device_result" if item.kind == "result" else b"device_transition"
        data = FeedDeviceTransition(
            position=item.position,
            device_id=item.stream_id,
            track=item.track,
            kind=item.kind,
            from_state=item.from_value,
            to_state=item.to_value,
            valid=item.valid,
            applied=item.applied,
            reason=item.reason,
            inconsistent=item.inconsistent,
            operation_id=item.operation_id or "",
            sub_operation_id=item.sub_operation_id or "",
            received_at=item.received_at,
            result=None if item.result is None else orjson.loads(item.result),
        ).to_json()
    else:
        name = b"task_transition"
        data = FeedTaskTransition(
            position=item.position,
            task_id=item.stream_id,
            from_status=item.from_value,
            to_status=item.to_value,
            valid=item.valid,
            applied=item.applied,
            event_time=item.event_time,
            request_id=item.request_id,
            received_at=item.received_at,
            source=item.source,
        ).to_json()
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (item.position, name, data)
