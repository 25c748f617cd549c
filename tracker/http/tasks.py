"""Batch tasks and their status history."""

from __future__ import annotations

from aiohttp import web

from tracker import documents as doc
from tracker.domain.notifications import TASK_STATUSES, TASK_TYPES
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE
from tracker.http.paging import (
    cursor_after,
    cursor_key,
    key_cursor,
    limit_of,
    next_cursor,
    one_of,
)
from tracker.http.responses import document, page
from tracker.store import queries


async def get_task(request: web.Request) -> web.Response:
    task_id = request.match_info["task_id"]
    found = await queries.task(request.app[DATABASE], task_id)
    if found is None:
        raise ApiError(404, "not_found", f"no batch task {task_id!r} has been seen")
    return document(doc.TaskDocument.of(found))


async def list_tasks(request: web.Request) -> web.Response:
    where = queries.TaskFilter(
        one_of(request, "status", TASK_STATUSES),
        one_of(request, "task_type", TASK_TYPES),
        request.query.get("app_id"),
    )
    found, last = await queries.tasks(
        request.app[DATABASE], where, cursor_key(request, (str,)), limit_of(request)
    )
    return page([doc.TaskDocument.of(t) for t in found], key_cursor(last))


async def list_task_transitions(request: web.Request) -> web.Response:
    """The task's status history, oldest first; late events carry `applied: false`."""
    task_id = request.match_info["task_id"]
    database, limit = request.app[DATABASE], limit_of(request)
    after = cursor_after(request) or 0
    found = await queries.task_transitions(database, task_id, after, limit)
    if not found and after == 0 and await queries.task(database, task_id) is None:
        raise ApiError(404, "not_found", f"no batch task {task_id!r} has been seen")
    cursor = next_cursor([t.position for t in found], limit)
    return page([doc.TaskTransitionDocument.of(t) for t in found], cursor)
