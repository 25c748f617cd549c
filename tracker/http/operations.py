"""Upgrade operations: one rollup, the list of them by latest activity, and their members."""

from __future__ import annotations

from datetime import datetime
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
from tracker.store import rollups
from tracker.store.listing import present


async def get_operation(request: web.Request) -> web.Response:
    """The rollup: counters kept current with every delivery, so this reads a few rows."""
    found = await _rollup_of(request)
    if (stuck_for := seconds_of(request, "stuck_for")) is not None:
        [found] = await rollups.with_stuck(request.app[DATABASE], [found], stuck_for)
    return document(doc.OperationDocument.of(found))


async def list_operations(request: web.Request) -> web.Response:
    """Rollups, the most recently active first."""
    filters = present(track=one_of(request, "track", TRACKS), app_id=request.query.get("app_id"))
    after = cursor_key(request, (datetime, str, TRACKS))
    found, last = await rollups.operations(request.app[DATABASE], filters, after, limit_of(request))
    if (stuck_for := seconds_of(request, "stuck_for")) is not None:
        found = await rollups.with_stuck(request.app[DATABASE], found, stuck_for)
    return page([doc.OperationDocument.of(r) for r in found], key_cursor(last))


async def list_members(request: web.Request) -> web.Response:
    """Every device that took part in the operation, by id, with its state and last result in
    it, also those that have moved on to another operation since."""
    operation_id = request.match_info["operation_id"]
    filters = present(
        operation_id=operation_id,
        track=one_of(request, "track", TRACKS),
        state=one_of(request, "state", UPGRADE_STATES),
        result=one_of(request, "result", RESULTS),
        error_code=request.query.get("error_code"),
    )
    database, limit = request.app[DATABASE], limit_of(request)
    after = cursor_key(request, (str, TRACKS))
    found, last = await rollups.members(database, filters, after, limit)
    if not found and after is None and await rollups.operation(database, operation_id) is None:
        raise _unknown(operation_id, None)
    return page([doc.OperationMemberDocument.of(m) for m in found], key_cursor(last))


async def _rollup_of(request: web.Request) -> rollups.Rollup:
    """The path's operation on `?track=` (default: its larger track), or a 404."""
    operation_id = request.match_info["operation_id"]
    track = cast("Track | None", one_of(request, "track", TRACKS))
    found = await rollups.operation(request.app[DATABASE], operation_id, track)
    if found is None:
        raise _unknown(operation_id, track)
    return found


def _unknown(operation_id: str, track: str | None) -> ApiError:
    on = f" on the {track} track" if track else ""
    return ApiError(404, "not_found", f"no device has reported operation {operation_id!r}{on}")


MAX_STEP = 7 * 24 * 60  # minutes: a week per bucket at most


async def get_activity(request: web.Request) -> web.Response:
    """The operation's activity, minute by minute or coarser (`step`), over its whole life."""
    step = whole_number(request.query.get("step", "1"))
    if step is None or not 1 <= step <= MAX_STEP:
        message = f"step must be a whole number of minutes from 1 to {MAX_STEP}"
        raise ApiError(400, "invalid_parameter", message, [{"field": "step", "problem": message}])
    found = await _rollup_of(request)
    rows = await rollups.activity(request.app[DATABASE], found.operation_id, found.track, step)
    return document(
        doc.ActivityList(step=step, items=[doc.ActivityDocument.of(row) for row in rows])
    )


async def list_invalid_moves(request: web.Request) -> web.Response:
    """The operation's invalid moves, oldest first: what an auditor looks for."""
    limit, after = limit_of(request), cursor_after(request) or 0
    found = await _rollup_of(request)
    moves = await rollups.invalid_moves(
        request.app[DATABASE], found.operation_id, found.track, after, limit
    )
    cursor = next_cursor([m.position for m in moves], limit)
    return page([doc.FeedDeviceTransition.of(m) for m in moves], cursor)
