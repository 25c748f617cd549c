"""Guards, their alerts, and the webhooks given up on (DESIGN.md, "Guards and alerts").

Writes take the admin token alone (http/auth.py). A guard's webhook URL is checked where it is
written, so a guard cannot be aimed at the internal network (tracker/webhooks/targets.py), and
again at every delivery (a name may resolve elsewhere later); its secret is kept apart and
never shown again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from aiohttp import web
from pydantic import Field, ValidationError

from tracker import documents as doc
from tracker.domain.guards import NAME_RULE, Definition, is_name, problems
from tracker.http.auth import is_admin
from tracker.http.body import read_body
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE, SETTINGS
from tracker.http.paging import cursor_after, cursor_key, key_cursor, next_cursor
from tracker.http.parameters import DEFAULT_LIMIT, TEXT, Cursor, Limit, PageQuery, Query, choice
from tracker.http.responses import document, page
from tracker.iotda.settings import credentials
from tracker.store import alerts, guard_changes, guards, outbox
from tracker.store.errors import NotFound
from tracker.webhooks import targets

MAX_DEFINITION = 16 * 1024  # bytes: a guard is a few hundred


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not is_name(name):
        raise ApiError(
            400,
            "invalid_parameter",
            f"a guard's name is {NAME_RULE}",
            [{"field": "name", "problem": "not a guard's name"}],
        )
    return name


async def put_guard(request: web.Request) -> web.Response:
    """Create or replace a guard: 201 when created, 200 when replaced."""
    name = _name(request)
    body = await read_body(request, MAX_DEFINITION)
    if not body.complete:
        raise ApiError(
            413, "body_too_large", f"a guard's definition is at most {MAX_DEFINITION} bytes"
        )
    definition = _definition(body.data)
    settings = request.app[SETTINGS]
    if definition.webhook is not None:
        try:
            await targets.check(
                definition.webhook.url, targets.allowed_hosts(settings.webhook_hosts)
            )
        except targets.Refused as refused:
            raise ApiError(
                422,
                "webhook_refused",
                f"the webhook's URL is refused: {refused}",
                [{"field": "webhook.url", "problem": str(refused)}],
            ) from None
    if definition.stop_task and credentials(settings) is None:
        raise ApiError(
            422,
            "stop_task_unavailable",
            "stop_task needs IoTDA's API: set TRACKER_IOTDA_ENDPOINT, _PROJECT_ID, _AK and _SK",
            [{"field": "stop_task", "problem": "no IoTDA credentials on this server"}],
        )
    guard, created = await guard_changes.put(request.app[DATABASE], name, definition)
    return document(doc.GuardDocument.of(guard), 201 if created else 200)


def _definition(raw: bytes) -> Definition:
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    try:
        return Definition.model_validate(parsed)
    except ValidationError as invalid:
        found = problems(invalid)
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in found)
        raise ApiError(422, "invalid_guard", message, found) from None


async def get_guard(request: web.Request) -> web.Response:
    found = await guards.one(request.app[DATABASE], _name(request))
    if found is None:
        raise NotFound(f"no guard named {request.match_info['name']!r}")
    return document(doc.GuardDocument.of(found, whole_url=is_admin(request)))


async def list_guards(request: web.Request) -> web.Response:
    found = await guards.listed(request.app[DATABASE])
    return page([doc.GuardDocument.of(g, whole_url=is_admin(request)) for g in found], None)


async def delete_guard(request: web.Request) -> web.Response:
    """204; its alerts stay (they are history, in the log), its webhooks still owed go dead."""
    if not await guard_changes.delete(request.app[DATABASE], _name(request)):
        raise NotFound(f"no guard named {request.match_info['name']!r}")
    return web.Response(status=204)


class AlertsQuery(Query):
    state: Annotated[
        str | None, choice(("firing", "resolved")), Field(description="firing or resolved")
    ] = None
    operation_id: Annotated[str | None, TEXT, Field(description="one rollout's")] = None
    guard: Annotated[str | None, TEXT, Field(description="one guard's")] = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


async def list_alerts(request: web.Request) -> web.Response:
    """The latest fired first."""
    query = AlertsQuery.of(request)
    where = alerts.AlertFilter(query.state, query.operation_id, query.guard)
    after = cursor_key(query.cursor, (datetime, str, str, ("software", "firmware")))
    found, last = await alerts.listed(request.app[DATABASE], where, after, query.limit)
    return page([doc.AlertDocument.of(a) for a in found], key_cursor(last))


async def list_dead_letters(request: web.Request) -> web.Response:
    """Webhook deliveries given up on, oldest first."""
    query = PageQuery.of(request)
    after = cursor_after(query.cursor) or 0
    found = await outbox.dead_letters(request.app[DATABASE], after, query.limit)
    letters = [doc.DeadLetterDocument.of(d) for d in found]
    if not is_admin(request):  # the read token sees where each went, not its path
        letters = [d.model_copy(update={"url": doc.origin(d.url)}) for d in letters]
    return page(letters, next_cursor([d.seq for d in found], query.limit))


async def retry_dead_letter(request: web.Request) -> web.Response:
    """Send a dead letter again (202: queued; its give-up time counts from now)."""
    await outbox.retry(request.app[DATABASE], request.match_info["id"])
    return web.Response(status=202)
