"""Every HTTP operation, declared once: the router is built from this table and so is the
OpenAPI document (tracker/http/openapi.py), so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.typedefs import Handler
from pydantic import BaseModel

from tracker import documents as doc
from tracker.domain.guards import Definition
from tracker.domain.registry import PUSHED_MODELS
from tracker.http import (
    dashboard,
    devices,
    events,
    guards,
    health,
    ingest,
    metrics,
    operations,
    session,
    stream,
    tasks,
)
from tracker.http.auth import Guard, TokenQuery
from tracker.http.parameters import PageQuery, Query


@dataclass(frozen=True, slots=True)
class PathParam:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    ok: type[BaseModel] | None  # the 200 document; None: not JSON (see `ok_media`)
    errors: tuple[int, ...]
    guard: Guard  # who may call it: decided here and nowhere else (http/auth.py)
    path_params: tuple[PathParam, ...] = ()
    query: type[Query] = Query  # its query parameters: what the handler parses, documented
    ok_media: str = "application/json"
    body: dict[str, Any] | None = None
    description: str = ""
    ok_statuses: tuple[int, ...] = (200,)  # its answers that are not errors


DEVICE_ID = PathParam("device_id", {"type": "string"}, "the platform's deviceId")
TASK_ID = PathParam("task_id", {"type": "string"}, "IoTDA's task_id")
OPERATION_ID = PathParam("operation_id", {"type": "string"}, "the platform's operationId")
GUARD_NAME = PathParam(
    "name",
    {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 100},
    "the guard's name",
)
ADMIN_ERRORS = (400, 401, 403, 404, 503)


NOTIFICATION_BODY: dict[str, Any] = {
    "description": "Any notification the platform pushes; recognised by shape. Other JSON objects "
    "are accepted and logged as unrecognised.",
    "required": True,
    "models": list(PUSHED_MODELS),
}

READ_ERRORS = (400, 401, 503)

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/notifications",
        ingest.receive_notification,
        "Receive one platform notification (the callback URL)",
        "ingest",
        doc.AcceptedDocument,
        (400, 401, 408, 413, 415, 422, 429, 503),
        guard="ingest",
        body=NOTIFICATION_BODY,
        description="200 only after the delivery is committed to the log and the projections. "
        "The token may be sent as a Bearer header or as ?token= (IoTDA can only be given a URL).",
        query=TokenQuery,
    ),
    Route(
        "GET",
        "/v1/events",
        events.list_events,
        "The event log, oldest first",
        "log",
        doc.Page[doc.EventDocument],
        READ_ERRORS,
        guard="read",
        query=events.EventsQuery,
        description="Followers paging by position never skip an event that commits late.",
    ),
    Route(
        "GET",
        "/v1/events/{position}/raw",
        events.event_raw,
        "One delivery's exact bytes",
        "log",
        None,
        (*READ_ERRORS, 404, 410),
        guard="read",
        ok_media="application/json",
        path_params=(PathParam("position", {"type": "integer", "minimum": 1}, "a log position"),),
    ),
    Route(
        "GET",
        "/v1/rejected",
        events.list_rejected,
        "Deliveries refused, with reason and bytes",
        "log",
        doc.Page[doc.RejectedDocument],
        READ_ERRORS,
        guard="read",
        query=events.RejectedQuery,
    ),
    Route(
        "GET",
        "/v1/devices",
        devices.list_devices,
        "Devices, by id",
        "devices",
        doc.Page[doc.DeviceDocument],
        READ_ERRORS,
        guard="read",
        query=devices.DevicesQuery,
    ),
    Route(
        "GET",
        "/v1/devices/{device_id}",
        devices.get_device,
        "One device: both tracks, and its IoTDA subtasks",
        "devices",
        doc.DeviceDocument,
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(DEVICE_ID,),
        query=devices.DeviceQuery,
    ),
    Route(
        "GET",
        "/v1/devices/{device_id}/transitions",
        devices.list_device_transitions,
        "A device's audit trail, oldest first",
        "devices",
        doc.Page[doc.DeviceTransitionDocument],
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(DEVICE_ID,),
        query=PageQuery,
    ),
    Route(
        "GET",
        "/v1/operations",
        operations.list_operations,
        "Upgrade operations, the most recently active first",
        "operations",
        doc.Page[doc.OperationDocument],
        READ_ERRORS,
        guard="read",
        query=operations.OperationsQuery,
        description="Each item is the operation's rollup on one track (see the operation).",
    ),
    Route(
        "GET",
        "/v1/operations/{operation_id}",
        operations.get_operation,
        "An upgrade operation's rollup: devices by state, result, error and target version",
        "operations",
        doc.OperationDocument,
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(OPERATION_ID,),
        query=operations.OperationQuery,
        description="Counters kept current in the same transaction as the deliveries that move "
        "them: reading them costs the same for ten devices or ten million.",
    ),
    Route(
        "GET",
        "/v1/operations/{operation_id}/devices",
        operations.list_members,
        "Every device that took part in an operation, with its state and last result in it",
        "operations",
        doc.Page[doc.OperationMemberDocument],
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(OPERATION_ID,),
        query=operations.MembersQuery,
        description="Devices that have since moved on to another operation are listed too, with "
        "their state and result as they left this one.",
    ),
    Route(
        "GET",
        "/v1/operations/{operation_id}/activity",
        operations.get_activity,
        "An operation's state reports, invalid moves and results per minute, over its life",
        "operations",
        doc.ActivityList,
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(OPERATION_ID,),
        query=operations.ActivityQuery,
        description="Counters kept per minute with every delivery: reading a rollout's whole "
        "life costs one row per minute of it, never one per transition.",
    ),
    Route(
        "GET",
        "/v1/operations/{operation_id}/invalid-moves",
        operations.list_invalid_moves,
        "An operation's invalid moves (state reports its machine does not make), oldest first",
        "operations",
        doc.Page[doc.FeedDeviceTransition],
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(OPERATION_ID,),
        query=operations.InvalidMovesQuery,
    ),
    Route(
        "GET",
        "/v1/tasks",
        tasks.list_tasks,
        "Batch tasks, by id",
        "tasks",
        doc.Page[doc.TaskDocument],
        READ_ERRORS,
        guard="read",
        query=tasks.TasksQuery,
    ),
    Route(
        "GET",
        "/v1/tasks/{task_id}",
        tasks.get_task,
        "One batch task",
        "tasks",
        doc.TaskDocument,
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(TASK_ID,),
    ),
    Route(
        "GET",
        "/v1/tasks/{task_id}/transitions",
        tasks.list_task_transitions,
        "A task's status history; late events carry applied: false",
        "tasks",
        doc.Page[doc.TaskTransitionDocument],
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(TASK_ID,),
        query=PageQuery,
    ),
    Route(
        "GET",
        "/healthz",
        health.healthz,
        "The process answers",
        "operations",
        doc.StatusDocument,
        (),
        guard="open",
    ),
    Route(
        "GET",
        "/v1/stream",
        stream.stream_transitions,
        "Transitions as server-sent events, as they commit; resumable",
        "devices",
        None,
        READ_ERRORS,
        guard="read",
        ok_media="text/event-stream",
        query=stream.StreamQuery,
        description="Events: `device_transition` and `device_result` (FeedDeviceTransition: a "
        "state report, a result), `task_transition` (FeedTaskTransition) and `alert` "
        "(FeedAlert: a guard's alert fired or resolved), each with `id` = "
        "its log position. Reconnect with Last-Event-ID "
        "to resume: nothing is skipped, even an event that committed late.",
    ),
    Route(
        "GET",
        "/metrics",
        metrics.get_metrics,
        "Prometheus metrics (text format)",
        "operations",
        None,
        (401,),
        guard="metrics",
        ok_media="text/plain",
    ),
    Route(
        "GET",
        "/readyz",
        health.readyz,
        "The database answers",
        "operations",
        doc.ReadyDocument,
        (503,),
        guard="open",
    ),
    Route(
        "GET",
        "/v1/session",
        session.get_session,
        "Whether the dashboard must ask for the read token, and whether this browser may read",
        "dashboard",
        doc.SessionDocument,
        (503,),  # the session is looked up in the database
        guard="open",
    ),
    Route(
        "POST",
        "/v1/session",
        session.sign_in,
        "Sign the dashboard in: the read token for an HttpOnly, SameSite=Strict session cookie",
        "dashboard",
        doc.SessionDocument,
        (400, 401, 408, 413, 503),
        guard="open",
        body={
            "description": "The read token; the ingest token opens nothing here.",
            "required": True,
            "models": [doc.SignIn],
        },
        description="The cookie (12 hours) stands for the read token on every read route, "
        "and for nothing else. It names a session kept by the server and carries its expiry "
        "and an HMAC under a random server secret: not the token, nor anything derived from "
        "it. Wrong tokens count against the client like wrong Bearer tokens: past 20 in a "
        "minute, 429 with Retry-After.",
    ),
    Route(
        "DELETE",
        "/v1/session",
        session.sign_out,
        "Sign the dashboard out: the session is revoked (every copy of the cookie) and cleared",
        "dashboard",
        doc.SessionDocument,
        (503,),
        guard="open",
    ),
    Route(
        "PUT",
        "/v1/guards/{name}",
        guards.put_guard,
        "Create or replace a guard: a scope, one condition, a signed webhook, maybe a stop",
        "guards",
        doc.GuardDocument,
        (400, 401, 403, 408, 413, 422, 503),
        guard="admin",
        path_params=(GUARD_NAME,),
        body={
            "description": "scope (app_id, track, platform, operation_id: all given must "
            "match), when (one condition), webhook {url, secret}, stop_task",
            "required": True,
            "models": [Definition],
        },
        description="Needs TRACKER_ADMIN_TOKEN as a Bearer token (no other token, and never in "
        "the URL); 201 when created, 200 when replaced. The webhook's URL must be http(s) and "
        "its host in TRACKER_WEBHOOK_HOSTS when that is set, else resolve to public addresses "
        "only. The secret is kept and never shown again. stop_task needs IoTDA credentials.",
        ok_statuses=(200, 201),
    ),
    Route(
        "GET",
        "/v1/guards",
        guards.list_guards,
        "Every guard, by name (no secrets)",
        "guards",
        doc.Page[doc.GuardDocument],
        READ_ERRORS,
        guard="read",
    ),
    Route(
        "GET",
        "/v1/guards/{name}",
        guards.get_guard,
        "One guard (no secret)",
        "guards",
        doc.GuardDocument,
        (*READ_ERRORS, 404),
        guard="read",
        path_params=(GUARD_NAME,),
    ),
    Route(
        "DELETE",
        "/v1/guards/{name}",
        guards.delete_guard,
        "Delete a guard: its alerts stay (history); its webhooks still owed become dead letters",
        "guards",
        None,
        ADMIN_ERRORS,
        guard="admin",
        path_params=(GUARD_NAME,),
        ok_statuses=(204,),
    ),
    Route(
        "GET",
        "/v1/alerts",
        guards.list_alerts,
        "Alerts, the latest fired first: one per (guard, rollout), firing or resolved",
        "guards",
        doc.Page[doc.AlertDocument],
        READ_ERRORS,
        guard="read",
        query=guards.AlertsQuery,
    ),
    Route(
        "GET",
        "/v1/webhooks/dead",
        guards.list_dead_letters,
        "Webhook deliveries given up on (after TRACKER_WEBHOOK_GIVE_UP), oldest first",
        "guards",
        doc.Page[doc.DeadLetterDocument],
        READ_ERRORS,
        guard="read",
        query=PageQuery,
    ),
    Route(
        "POST",
        "/v1/webhooks/dead/{id}/retry",
        guards.retry_dead_letter,
        "Send a dead letter again, from now on with a fresh give-up time",
        "guards",
        None,
        ADMIN_ERRORS,
        guard="admin",
        path_params=(PathParam("id", {"type": "string"}, "the alert change's id"),),
        ok_statuses=(202,),
    ),
    *(
        Route(
            "GET",
            path,
            handler,
            handler.__doc__.splitlines()[0] if handler.__doc__ else path,
            "dashboard",
            None,
            (),
            guard="open",  # no data and no token in them: the API they read is guarded
            path_params=params,
            ok_media="text/html",
        )
        for path, handler, params in (
            ("/", dashboard.overview_page, ()),
            ("/operations/{operation_id}", dashboard.operation_page, (OPERATION_ID,)),
            ("/devices/{device_id}", dashboard.device_page, (DEVICE_ID,)),
            ("/rejected", dashboard.rejected_page, ()),
        )
    ),
    Route(
        "GET",
        "/assets/{name}",
        dashboard.asset,
        "The dashboard's scripts and styles (shipped in the package)",
        "dashboard",
        None,
        (404,),
        guard="open",
        path_params=(PathParam("name", {"type": "string"}, "a file of tracker/dashboard/"),),
        ok_media="text/plain",
    ),
)
