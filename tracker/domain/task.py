"""A batch task's status, folded from IoTDA events that carry the platform's own time.

    Initializing ──▶ Waitting ──▶ Processing ──▶ Success | PartialSuccess | Fail | Stopped
                        │              │  ▲                    │        │
                        │              │  └────── retried ─────┴────────┘
                        │              └──▶ Stopping ──▶ Stopped
                        └──▶ Stopped | Fail

Events are ordered by their time (`event_time_ms`, else `event_time`); equal times by the
status's rank in that lifecycle, then by log position. A time to the second and one to the
millisecond are compared to the second: 12:12:12Z may have been 12:12:12.900. An event that
comes before the one the status came from arrives late: it is recorded with `applied=False` and
the status does not regress. A re-delivered event (same `request_id`, or without one the same
time and status) changes nothing and records nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from tracker.domain.notifications import BatchTaskUpdated, PlatformTime, TaskStatus, TaskType
from tracker.domain.recorded import Recorded

VALID_MOVES: frozenset[tuple[TaskStatus, TaskStatus]] = frozenset(
    {
        # A task is Initializing while it is created, then Waitting to run (the SDKs' BatchTask
        # model, huaweicloudsdkiotda/v5/model/task.py, "Initializing: 初始化中. Waitting: 等待中").
        ("Initializing", "Waitting"),
        ("Waitting", "Processing"),
        ("Waitting", "Stopped"),
        ("Waitting", "Fail"),
        ("Processing", "Success"),
        ("Processing", "PartialSuccess"),
        ("Processing", "Fail"),
        ("Processing", "Stopped"),
        # StopBatchTask stops a running task's subtasks; it is Stopping ("停止中") until they have
        # (iotda_client.py, stop_batch_task: refused once the task is complete or "正在停止中").
        ("Processing", "Stopping"),
        ("Stopping", "Stopped"),
        # RetryBatchTask runs a task's failed and stopped subtasks again (iotda_client.py,
        # retry_batch_task: "重新执行所有状态为失败、失败待重试和已停止的子任务"; refused for a task
        # that succeeded, stopped, is stopping, waiting or initialising): Fail and PartialSuccess
        # go back to Processing.
        ("Fail", "Processing"),
        ("PartialSuccess", "Processing"),
    }
)
# Where each status comes in a task's life: what orders two events of the same platform time.
RANK: dict[str, int] = {
    "Initializing": 0,
    "Waitting": 1,
    "Processing": 2,
    "Stopping": 3,
    "Success": 4,
    "PartialSuccess": 4,
    "Fail": 4,
    "Stopped": 4,
}


class Task(NamedTuple):
    task_id: str
    app_id: str
    task_type: TaskType
    status: TaskStatus
    status_desc: str | None
    event_time: datetime  # the platform's time of the event the status came from
    request_id: str | None
    seen: frozenset[str]  # delivery keys already folded in (retry detection)
    last_position: int
    updated_at: datetime
    event_time_precise: bool  # event_time was written to the millisecond, not to the second


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


def comes_before(when: PlatformTime, status: TaskStatus, task: Task) -> bool:
    """Whether an event (time, status) precedes the one `task`'s status came from."""
    if when.precise and task.event_time_precise:
        mine, theirs = when.at, task.event_time
    else:
        mine, theirs = when.truncated(), task.event_time.replace(microsecond=0)
    if mine != theirs:
        return mine < theirs
    return RANK[status] < RANK[task.status]


def evolve_task(
    task: Task | None, event: Recorded[BatchTaskUpdated]
) -> tuple[Task | None, TaskTransition | None]:
    """Fold one event into its task. Returns (new state or None if unchanged, transition)."""
    n = event.notification
    body, when, key = n.notify_data.body, n.occurred(), delivery_key(n)
    if task is not None and key in task.seen:
        return None, None
    before = task.status if task else None
    late = task is not None and comes_before(when, body.status, task)
    transition = TaskTransition(
        task_id=body.task_id,
        position=event.position,
        from_status=before,
        to_status=body.status,
        valid=is_valid_move(before, body.status),
        applied=not late,
        event_time=when.at,
        request_id=n.request_id,
        received_at=event.received_at,
    )
    if task is not None and late:
        return task._replace(seen=task.seen | {key}), transition
    changed = Task(
        task_id=body.task_id,
        app_id=body.app_id,
        task_type=body.task_type,  # type: ignore[arg-type] # only upgrade tasks are projected
        status=body.status,
        status_desc=body.status_desc,
        event_time=when.at,
        request_id=n.request_id,
        seen=(task.seen if task else frozenset()) | {key},
        last_position=event.position,
        updated_at=event.received_at,
        event_time_precise=when.precise,
    )
    return changed, (transition if before != body.status else None)
