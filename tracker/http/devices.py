"""Devices, their audit trail, and upgrade operations."""

from __future__ import annotations

from typing import cast

from aiohttp import web

from tracker import documents as doc
from tracker.domain.device import TRACKS, Track
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE
from tracker.http.paging import cursor_after, cursor_after_id, limit_of, next_cursor, one_of
from tracker.http.responses import document, page
from tracker.store import queries

STATES = ("idle", "downloading", "downloaded", "updating")


async def get_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    found = await queries.device(request.app[DATABASE], device_id)
    if found is None:
        raise ApiError(404, "not_found", f"no device {device_id!r} has been seen")
    return document(doc.DeviceDocument.of(found))


async def list_devices(request: web.Request) -> web.Response:
    """Devices by id. `state` and `operation_id` look at one track (`track`, default software)."""
    track = cast("Track | None", one_of(request, "track", TRACKS))
    state = one_of(request, "state", STATES)
    operation_id = request.query.get("operation_id")
    if track is None and (state is not None or operation_id is not None):
        track = "software"
    where = queries.DeviceFilter(track, state, request.query.get("app_id"), operation_id)
    limit = limit_of(request)
    found = await queries.devices(request.app[DATABASE], where, cursor_after_id(request), limit)
    cursor = next_cursor([d.device_id for d in found], limit)
    return page([doc.DeviceDocument.of(d) for d in found], cursor)


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


async def get_operation(request: web.Request) -> web.Response:
    operation_id = request.match_info["operation_id"]
    summary = await queries.operation(request.app[DATABASE], operation_id)
    if summary is None:
        raise ApiError(404, "not_found", f"no device has reported operation {operation_id!r}")
    return document(doc.OperationDocument.of(summary))
