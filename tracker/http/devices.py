"""Devices and their audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from aiohttp import web

from tracker import documents as doc
from tracker.domain.notifications import RESULTS, TRACKS, UPGRADE_STATES, Track
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE
from tracker.http.paging import (
    cursor_after,
    cursor_key,
    key_cursor,
    limit_of,
    next_cursor,
    one_of,
    seconds_of,
    whole_number,
)
from tracker.http.responses import document, page
from tracker.store import queries


async def get_device(request: web.Request) -> web.Response:
    """The device now or, with ?at=<log position or RFC 3339 time>, as it was then."""
    device_id, database = request.match_info["device_id"], request.app[DATABASE]
    at = request.query.get("at")
    if at is None:
        found = await queries.device(database, device_id)
    else:
        found = await queries.device_at(database, device_id, _moment(at))
    if found is None:
        when = "" if at is None else f" at or before {at}"
        raise ApiError(404, "not_found", f"no device {device_id!r} has been seen{when}")
    return document(doc.DeviceDocument.of(found))


def _moment(at: str) -> int | datetime:
    position = whole_number(at)
    if position is not None:
        return position
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is not None:
        try:
            return moment.astimezone(UTC)  # at the ends of the calendar this overflows
        except OverflowError:
            moment = None
    message = f"at must be a log position or an RFC 3339 time with a zone; got {at!r}"
    raise ApiError(400, "invalid_parameter", message, [{"field": "at", "problem": message}])


async def list_devices(request: web.Request) -> web.Response:
    """Devices by id; with `stuck_for`, longest stuck first. `state`, `operation_id`, `result`
    and `stuck_for` look at one track (`track`, default software)."""
    track = cast("Track | None", one_of(request, "track", TRACKS))
    state = one_of(request, "state", UPGRADE_STATES)
    operation_id = request.query.get("operation_id")
    result = one_of(request, "result", RESULTS)
    stuck_for = seconds_of(request, "stuck_for")
    if track is None and any(x is not None for x in (state, operation_id, result, stuck_for)):
        track = "software"
    where = queries.DeviceFilter(
        track, state, request.query.get("app_id"), operation_id, result, stuck_for
    )
    kinds = (datetime, str) if queries.device_listing(where) is queries.TRACKS_STUCK else (str,)
    found, last = await queries.devices(
        request.app[DATABASE], where, cursor_key(request, kinds), limit_of(request)
    )
    return page([doc.DeviceDocument.of(d) for d in found], key_cursor(last))


async def list_device_transitions(request: web.Request) -> web.Response:
    """The device's audit trail, oldest first: every change of state and whether it was legal."""
    device_id = request.match_info["device_id"]
    database, limit = request.app[DATABASE], limit_of(request)
    after = cursor_after(request) or 0
    found = await queries.device_transitions(database, device_id, after, limit)
    if not found and after == 0 and await queries.device(database, device_id) is None:
        raise ApiError(404, "not_found", f"no device {device_id!r} has been seen")
    cursor = next_cursor([t.position for t in found], limit)
    return page([doc.DeviceTransitionDocument.of(t) for t in found], cursor)
