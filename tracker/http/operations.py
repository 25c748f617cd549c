"""Upgrade operations: one rollup, the list of them by latest activity, and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import Field

from tracker import documents as doc
from tracker.domain.notifications import RESULTS, TRACKS, Track
from tracker.http.keys import DATABASE
from tracker.http.paging import cursor_after, cursor_key, key_cursor, next_cursor
from tracker.http.parameters import (
    DEFAULT_LIMIT,
    SECONDS,
    TEXT,
    AppId,
    Cursor,
    Limit,
    Parameter,
    Query,
    choice,
    invalid_parameter,
    whole_number,
)
from tracker.http.responses import document, page
from tracker.store import rollups
from tracker.store.listing import present
from tracker.store.queries import STORED_MEMBER_STATES

MAX_STEP = 7 * 24 * 60  # minutes: a week per bucket at most

# The track of one operation: it has one, unless the platform reused its id on both.
OneTrack = Annotated[
    Track | None, choice(TRACKS), Field(description="default: the track with more devices")
]
OnlyTrack = Annotated[Track | None, choice(TRACKS), Field(description="only this track")]
StuckCount = Annotated[
    float | None,
    SECONDS,
    Field(description="also count the devices stuck for at least this many seconds (`stuck`)"),
]


class OperationQuery(Query):
    track: OneTrack = None
    stuck_for: StuckCount = None


async def get_operation(request: web.Request) -> web.Response:
    """The rollup: counters kept current with every delivery, so this reads a few rows."""
    query, database = OperationQuery.of(request), request.app[DATABASE]
    found = await rollups.operation(database, request.match_info["operation_id"], query.track)
    if query.stuck_for is not None:
        [found] = await rollups.with_stuck(database, [found], query.stuck_for)
    return document(doc.OperationDocument.of(found))


class OperationsQuery(Query):
    track: OnlyTrack = None
    app_id: AppId = None
    stuck_for: StuckCount = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


async def list_operations(request: web.Request) -> web.Response:
    """Rollups, the most recently active first."""
    query, database = OperationsQuery.of(request), request.app[DATABASE]
    filters = present(track=query.track, app_id=query.app_id)
    after = cursor_key(query.cursor, (datetime, str, TRACKS))
    found, last = await rollups.operations(database, filters, after, query.limit)
    if query.stuck_for is not None:
        found = await rollups.with_stuck(database, found, query.stuck_for)
    return page([doc.OperationDocument.of(r) for r in found], key_cursor(last))


MEMBER_STATES = STORED_MEMBER_STATES[1:]  # '' is how a column holds "none yet"


class MembersQuery(Query):
    track: OnlyTrack = None
    state: Annotated[
        str | None,
        choice(MEMBER_STATES),
        Field(description="state in this operation (an IoTDA task's: the subtask's status)"),
    ] = None
    result: Annotated[
        str | None, choice(RESULTS), Field(description="last result in this operation")
    ] = None
    error_code: Annotated[str | None, TEXT, Field(description="error code of that result")] = None
    stuck_for: Annotated[
        float | None,
        SECONDS,
        Field(
            description="an IoTDA task's members in Waitting, Processing or FailWaitRetry for at "
            "least this many seconds, longest first (with track alone: no state, result or "
            "error_code). An OceanConnect operation's: GET /v1/devices?operation_id=&stuck_for="
        ),
    ] = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None

    def filters(self, operation_id: str) -> dict[str, object]:
        if self.stuck_for is not None and (self.state or self.result or self.error_code):
            raise invalid_parameter(
                "stuck_for", "stuck_for lists busy members: it takes no state, result or error_code"
            )
        return present(
            operation_id=operation_id,
            track=self.track,
            state=self.state,
            result=self.result,
            error_code=self.error_code,
            stuck_for=self.stuck_for,
        )


async def list_members(request: web.Request) -> web.Response:
    """Every device that took part in the operation, by id, with its state and last result in
    it, also those that have moved on to another operation since; with stuck_for, an IoTDA
    task's busy members, longest stuck first."""
    query = MembersQuery.of(request)
    filters = query.filters(request.match_info["operation_id"])
    stuck = rollups.member_listing(filters) is rollups.MEMBERS_STUCK
    after = cursor_key(query.cursor, (datetime, str, TRACKS) if stuck else (str, TRACKS))
    try:
        found, last = await rollups.members(request.app[DATABASE], filters, after, query.limit)
    except rollups.NotIoTDA as refused:
        raise invalid_parameter("stuck_for", str(refused)) from None
    return page([doc.OperationMemberDocument.of(m) for m in found], key_cursor(last))


def _step(raw: str) -> int | None:
    step = whole_number(raw)
    return step if step is not None and 1 <= step <= MAX_STEP else None


class ActivityQuery(Query):
    track: OneTrack = None
    step: Annotated[
        int,
        Parameter(
            _step,
            {"type": "integer", "minimum": 1, "maximum": MAX_STEP},
            f"{{name}} must be a whole number of minutes from 1 to {MAX_STEP}",
        ),
        Field(description="minutes per bucket, from the operation's first minute"),
    ] = 1


async def get_activity(request: web.Request) -> web.Response:
    """The operation's activity, minute by minute or coarser (`step`), over its whole life."""
    query, database = ActivityQuery.of(request), request.app[DATABASE]
    found = await rollups.operation(database, request.match_info["operation_id"], query.track)
    rows = await rollups.activity(database, found.operation_id, found.track, query.step)
    return document(
        doc.ActivityList(step=query.step, items=[doc.ActivityDocument.of(row) for row in rows])
    )


class InvalidMovesQuery(Query):
    track: OneTrack = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


async def list_invalid_moves(request: web.Request) -> web.Response:
    """The operation's invalid moves, oldest first: what an auditor looks for."""
    query, database = InvalidMovesQuery.of(request), request.app[DATABASE]
    after = cursor_after(query.cursor) or 0
    found = await rollups.operation(database, request.match_info["operation_id"], query.track)
    moves = await rollups.invalid_moves(
        database, found.operation_id, found.track, after, query.limit
    )
    cursor = next_cursor([m.position for m in moves], query.limit)
    return page([doc.FeedDeviceTransition.of(m) for m in moves], cursor)
