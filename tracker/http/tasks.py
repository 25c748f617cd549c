"""Batch tasks and their status history."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from tracker import documents as doc
from tracker.domain.notifications import TASK_STATUSES, TASK_TYPES
from tracker.http.keys import DATABASE
from tracker.http.paging import cursor_after, cursor_key, key_cursor, next_cursor
from tracker.http.parameters import DEFAULT_LIMIT, AppId, Cursor, Limit, PageQuery, Query, choice
from tracker.http.responses import document, page
from tracker.store import queries


async def get_task(request: web.Request) -> web.Response:
    found = await queries.task(request.app[DATABASE], request.match_info["task_id"])
    return document(doc.TaskDocument.of(found))


class TasksQuery(Query):
    status: Annotated[str | None, choice(TASK_STATUSES), Field(description="current status")] = None
    task_type: Annotated[str | None, choice(TASK_TYPES), Field(description="task type")] = None
    app_id: AppId = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


async def list_tasks(request: web.Request) -> web.Response:
    query = TasksQuery.of(request)
    where = queries.TaskFilter(query.status, query.task_type, query.app_id)
    after = cursor_key(query.cursor, (str,))
    found, last = await queries.tasks(request.app[DATABASE], where, after, query.limit)
    return page([doc.TaskDocument.of(t) for t in found], key_cursor(last))


async def list_task_transitions(request: web.Request) -> web.Response:
    """The task's status history, oldest first; late events carry `applied: false`."""
    query = PageQuery.of(request)
    after = cursor_after(query.cursor) or 0
    found = await queries.task_transitions(
        request.app[DATABASE], request.match_info["task_id"], after, query.limit
    )
    cursor = next_cursor([t.position for t in found], query.limit)
    return page([doc.TaskTransitionDocument.of(t) for t in found], cursor)
