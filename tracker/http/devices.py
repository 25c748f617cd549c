"""Devices and their audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, NamedTuple

from aiohttp import web
from pydantic import Field

from tracker import documents as doc
from tracker.domain.notifications import RESULTS, TRACKS, UPGRADE_STATES, Track
from tracker.http.keys import DATABASE
from tracker.http.paging import cursor_after, cursor_key, key_cursor, next_cursor
from tracker.http.parameters import (
    DEFAULT_LIMIT,
    SECONDS,
    TEXT,
    AppId,
    Cursor,
    Limit,
    PageQuery,
    Parameter,
    Query,
    choice,
    whole_number,
)
from tracker.http.responses import document, page
from tracker.store import queries


class Moment(NamedTuple):
    """`?at=`: a log position or a time, and the text it was given as (for a 404's message)."""

    value: int | datetime
    said: str


def _moment(at: str) -> Moment | None:
    position = whole_number(at)
    if position is not None:
        return Moment(position, at)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return Moment(moment.astimezone(UTC), at)  # at the ends of the calendar this overflows
    except OverflowError:
        return None


class DeviceQuery(Query):
    at: Annotated[
        Moment | None,
        Parameter(
            _moment,
            {"type": "string"},
            "{name} must be a log position or an RFC 3339 time with a zone; got {raw!r}",
        ),
        Field(description="time travel: a log position, or an RFC 3339 time with a zone"),
    ] = None


async def get_device(request: web.Request) -> web.Response:
    """The device now or, with ?at=<log position or RFC 3339 time>, as it was then: its two
    OceanConnect tracks and its IoTDA tasks (a device IoTDA's tasks alone name has no track)."""
    at = DeviceQuery.of(request).at
    device_id, database = request.match_info["device_id"], request.app[DATABASE]
    if at is None:
        found = await queries.device(database, device_id)
    else:
        found = await queries.device_at(database, device_id, at.value, at.said)
    return document(doc.DeviceDocument.of(found))


class DevicesQuery(Query):
    track: Annotated[
        Track | None,
        choice(TRACKS),
        Field(description="the track `state` and `operation_id` look at (default software)"),
    ] = None
    state: Annotated[
        str | None, choice(UPGRADE_STATES), Field(description="current state on `track`")
    ] = None
    app_id: AppId = None
    operation_id: Annotated[str | None, TEXT, Field(description="current operation on `track`")] = (
        None
    )
    result: Annotated[str | None, choice(RESULTS), Field(description="last result on `track`")] = (
        None
    )
    stuck_for: Annotated[
        float | None,
        SECONDS,
        Field(
            description="in a state other than idle on `track` for at least this many seconds; "
            "the page is then ordered longest stuck first"
        ),
    ] = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None

    def where(self) -> queries.DeviceFilter:
        """The filter: a track filter's subject defaults to software."""
        filters = (self.state, self.operation_id, self.result, self.stuck_for)
        track = self.track or ("software" if any(f is not None for f in filters) else None)
        return queries.DeviceFilter(
            track, self.state, self.app_id, self.operation_id, self.result, self.stuck_for
        )


async def list_devices(request: web.Request) -> web.Response:
    """Devices by id; with `stuck_for`, longest stuck first. `state`, `operation_id`, `result`
    and `stuck_for` look at one track (`track`, default software)."""
    query = DevicesQuery.of(request)
    where = query.where()
    kinds = (datetime, str) if queries.device_listing(where) is queries.TRACKS_STUCK else (str,)
    after = cursor_key(query.cursor, kinds)
    found, last = await queries.devices(request.app[DATABASE], where, after, query.limit)
    return page([doc.DeviceDocument.of(d) for d in found], key_cursor(last))


async def list_device_transitions(request: web.Request) -> web.Response:
    """The device's audit trail, oldest first: every change of state and whether it was legal."""
    query = PageQuery.of(request)
    after = cursor_after(query.cursor) or 0
    found = await queries.device_transitions(
        request.app[DATABASE], request.match_info["device_id"], after, query.limit
    )
    cursor = next_cursor([t.position for t in found], query.limit)
    return page([doc.DeviceTransitionDocument.of(t) for t in found], cursor)
