"""A batch task's status, folded from IoTDA events that carry the platform's own time.

    Waitting ──▶ Processing ──▶ Success | PartialSuccess | Fail | Stopped
        └──────▶ Stopped | Fail

Events are ordered by their time (`event_time_ms`, else `event_time`), then by log position. An
event older than the one the status came from arrives late: it is recorded with
`applied=False` and the status does not regress. A re-delivered event (same `request_id`, or
without one the same time and status) changes nothing and records nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from tracker.domain.notifications import BatchTaskUpdated, TaskStatus, TaskType
from tracker.domain.recorded import Recorded

VALID_MOVES: frozenset[tuple[TaskStatus, TaskStatus]] = frozenset(
    {
        ("Waitting", "Processing"),
        ("Waitting", "Stopped"),
        ("Waitting", "Fail"),
        ("Processing", "Success"),
        ("Processing", "PartialSuccess"),
        ("Processing", "Fail"),
        ("Processing", "Stopped"),
    }
)


class Task(NamedTuple):
    task_id: str
    app_id: str
    task_type: TaskType
    status: TaskStatus
    status_desc: str
    event_time: datetime  # the platform's time of the event the status came from
    request_id: str | None
    seen: frozenset[str]  # delivery keys already folded in (retry detection)
    last_position: int
    updated_at: datetime


class TaskTransition(NamedTuple):
    task_id: str
    position: int
    from_status: TaskStatus | None
    to_status: TaskStatus
    valid: bool
    applied: bool
    event_time: datetime
    request_id: str | None
    received_at: datetime


def delivery_key(notification: BatchTaskUpdated) -> str:
    """What identifies one platform event across its re-deliveries."""
    if notification.request_id:
        return f"request:{notification.request_id}"
    status = notification.notify_data.body.status
    return f"time:{notification.occurred_at().isoformat()}:{status}"


def is_valid_move(before: TaskStatus | None, after: TaskStatus) -> bool:
    return before is None or (before, after) in VALID_MOVES


def evolve_task(
    task: Task | None, event: Recorded[BatchTaskUpdated]
) -> tuple[Task | None, TaskTransition | None]:
    """Fold one event into its task. Returns (new state or None if unchanged, transition)."""
    n = event.notification
    body, when, key = n.notify_data.body, n.occurred_at(), delivery_key(n)
    if task is not None and key in task.seen:
        return None, None
    before = task.status if task else None
    late = task is not None and when < task.event_time
    transition = TaskTransition(
        task_id=body.task_id,
        position=event.position,
        from_status=before,
        to_status=body.status,
        valid=is_valid_move(before, body.status),
        applied=not late,
        event_time=when,
        request_id=n.request_id,
        received_at=event.received_at,
    )
    if task is not None and late:
        return task._replace(seen=task.seen | {key}), transition
    changed = Task(
        task_id=body.task_id,
        app_id=body.app_id,
        task_type=body.task_type,
        status=body.status,
        status_desc=body.status_desc,
        event_time=when,
        request_id=n.request_id,
        seen=(task.seen if task else frozenset()) | {key},
        last_position=event.position,
        updated_at=event.received_at,
    )
    return changed, (transition if before != body.status else None)
