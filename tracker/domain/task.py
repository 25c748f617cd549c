"""A batch task's status, folded from IoTDA events that carry the platform's own time.

    Initializing ──▶ Waitting ──▶ Processing ──▶ Success | PartialSuccess | Fail | Stopped
                        │              │  ▲                    │        │
                        │              │  └────── retried ─────┴────────┘
                        │              └──▶ Stopping ──▶ Stopped
                        └──▶ Stopped | Fail

The status is that of the task's last event, whatever order the events arrive in. Events are
ordered by second (`event_time_ms`, else `event_time`, which is to the second); within the last
second, by the millisecond when every event of that second has one, and otherwise by where the
status comes in the lifecycle (12:12:12Z may have been 12:12:12.900), then by millisecond and
content, so that any arrival order gives the same status.

A retry (RetryBatchTask, or the task's retry policy) takes a Fail or PartialSuccess task back to
Processing, so within one second a Processing ranks after those once the task has been
Processing in an earlier second: it is the retry, not the first run (`RETRY_RANK`). A task
whose first run and failure fall in one second still reads Fail. The events of the last second
are kept (`latest`), with the earliest time the task was Processing (`first_run_at`), so a late
event can still decide between them.

An event that comes before the one the status came from arrives late: it is recorded with
`applied=False`. A re-delivered event (same `request_id`, or without one the same time and
status) changes nothing and records nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from tracker.domain.instants import as_utc
from tracker.domain.notifications import BatchTaskObserved, BatchTaskUpdated, TaskStatus, TaskType
from tracker.domain.recorded import Recorded

Source = Literal["push", "reconciliation"]  # who told us: the platform's push, or its API

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
# Where each status comes in a task's life: what orders two events of the same second.
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
# The same once the task has run before that second: a Processing is a retry of a Fail or a
# PartialSuccess, which it follows (and which a Stopping or an end follows in turn).
RETRY_RANK: dict[str, int] = {
    "Initializing": 0,
    "Waitting": 1,
    "Fail": 2,
    "PartialSuccess": 2,
    "Processing": 3,
    "Stopping": 4,
    "Success": 5,
    "Stopped": 5,
}


class TaskEvent(NamedTuple):
    """A status change as the platform stamped it."""

    status: TaskStatus
    status_desc: str | None
    event_time: datetime
    precise: bool  # written to the millisecond, not to the second
    request_id: str | None


class Task(NamedTuple):
    task_id: str
    app_id: str
    task_type: TaskType
    status: TaskStatus
    status_desc: str | None
    event_time: datetime  # the platform's time of the event the status came from
    request_id: str | None
    seen: frozenset[str]  # delivery keys already folded in (retry detection)
    last_position: int  # the event that last changed what the task shows
    updated_at: datetime  # the latest receive time of such a change (never moves back)
    event_time_precise: bool  # event_time was written to the millisecond, not to the second
    first_run_at: datetime | None  # the earliest time it was Processing
    latest: tuple[TaskEvent, ...]  # the events of its last second, in a fixed order
    # What the reconciler read (tracker/iotda/): the platform's own counters of the subtasks,
    # as of the latest observation that had them, and every status each source has told.
    progress: Progress | None = None
    progress_at: datetime | None = None
    pushed: frozenset[str] = frozenset()  # statuses a push delivered
    observed: frozenset[str] = frozenset()  # statuses the reconciler saw


class Progress(NamedTuple):
    """The platform's `task_progress`: its subtasks by status, as it counts them."""

    total: int
    processing: int
    success: int
    fail: int
    waitting: int
    fail_wait_retry: int
    stopped: int
    removed: int


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
    source: Source = "push"  # "reconciliation": read through the API; event_time is our clock's


def delivery_key(notification: BatchTaskUpdated) -> str:
    """What identifies one platform event across its re-deliveries."""
    if notification.request_id:
        return f"request:{notification.request_id}"
    status = notification.notify_data.body.status
    return f"time:{notification.occurred_at().isoformat()}:{status}"


def is_valid_move(before: TaskStatus | None, after: TaskStatus) -> bool:
    return before is None or (before, after) in VALID_MOVES


def last_of(latest: tuple[TaskEvent, ...], first_run_at: datetime | None) -> TaskEvent:
    """The event the status comes from, among those of the last second (see the module)."""
    second = latest[0].event_time.replace(microsecond=0)
    retried = first_run_at is not None and first_run_at.replace(microsecond=0) < second
    ranks = RETRY_RANK if retried else RANK
    if all(e.precise for e in latest):
        return max(latest, key=lambda e: (e.event_time, ranks[e.status], *_content(e)))
    return max(latest, key=lambda e: (ranks[e.status], e.event_time, *_content(e)))


def _content(event: TaskEvent) -> tuple[str, str, str]:
    return event.status, event.request_id or "", event.status_desc or ""


def evolve_task(
    task: Task | None, event: Recorded[BatchTaskUpdated]
) -> tuple[Task | None, TaskTransition | None]:
    """Fold one event into its task. Returns (new state or None if unchanged, transition)."""
    n = event.notification
    body, when = n.notify_data.body, n.occurred()
    mine = TaskEvent(body.status, body.status_desc, when.at, when.precise, n.request_id)
    said = _Said(body.task_id, body.app_id, body.task_type, mine, delivery_key(n), "push")
    changed, transition = _fold(task, event, said)
    if changed is None:
        return None, None
    return changed._replace(pushed=changed.pushed | {body.status}), transition


def observe_task(
    task: Task | None, event: Recorded[BatchTaskObserved]
) -> tuple[Task | None, TaskTransition | None]:
    """Fold what the reconciler read of a task. The API gives no time for a status, so the
    observation is an event at the time it was seen, ordered with the pushes by time like any
    other; it also brings the platform's progress counters (those of the latest observation
    that has them) and says which statuses were seen this way, so any order gives one task."""
    n = event.notification
    body = n.batchtask
    mine = TaskEvent(body.status, body.status_desc, n.observed_at, precise=True, request_id=None)
    key = f"observed:{n.observed_at.isoformat()}:{body.status}"
    said = _Said(body.task_id, n.app_id or "", body.task_type, mine, key, "reconciliation")
    changed, transition = _fold(task, event, said)
    if changed is None:  # an observation of this time and status is in: its counters may not
        assert task is not None  # noqa: S101 - only a task seen before has seen it
        changed = in_utc(task)
    progress = None if body.task_progress is None else Progress(**body.task_progress.model_dump())
    held = changed.progress_at
    if progress is not None and (
        held is None
        or changed.progress is None
        or (n.observed_at, progress) > (held, changed.progress)
    ):
        changed = changed._replace(progress=progress, progress_at=n.observed_at)
    changed = changed._replace(observed=changed.observed | {body.status})
    if changed == task:
        return None, None
    return changed, transition


def _app(held: str, said: str) -> str:
    """A task's application: the least that anyone named (an observation may name none)."""
    return min(held, said) if held and said else held or said


class _Said(NamedTuple):
    """A status change as either source tells it, with what identifies it across retries."""

    task_id: str
    app_id: str
    task_type: str
    event: TaskEvent
    key: str  # delivery_key, or the observation's time and status
    source: Source


def _fold(
    task: Task | None,
    event: Recorded[BatchTaskUpdated] | Recorded[BatchTaskObserved],
    said: _Said,
) -> tuple[Task | None, TaskTransition | None]:
    task_id, app_id, task_type, mine, key, source = said
    task = None if task is None else in_utc(task)
    if task is not None and key in task.seen:
        return None, None
    first_run = mine.event_time if mine.status == "Processing" else None
    latest: tuple[TaskEvent, ...] = (mine,)
    second = mine.event_time.replace(microsecond=0)
    if task is not None:
        held = task.latest[0].event_time.replace(microsecond=0)
        if second == held:
            latest = tuple(sorted((*task.latest, mine), key=_order))
        elif second < held:
            latest = task.latest
        if task.first_run_at is not None:
            first_run = min(task.first_run_at, first_run or task.first_run_at)
    last = last_of(latest, first_run)
    before = task.status if task else None
    transition = TaskTransition(
        task_id=task_id,
        position=event.position,
        from_status=before,
        to_status=mine.status,
        valid=is_valid_move(before, mine.status),
        applied=last is mine,
        event_time=mine.event_time,
        request_id=mine.request_id,
        received_at=event.received_at,
        source=source,
    )
    shown = (last.status, last.status_desc, last.event_time, last.request_id)
    moved = task is None or shown != (
        task.status,
        task.status_desc,
        task.event_time,
        task.request_id,
    )
    changed = Task(
        task_id=task_id,
        app_id=app_id if task is None else _app(task.app_id, app_id),
        # Only upgrade tasks are projected (delivery.py): the type is one of the two.
        task_type=task_type if task is None else min(task.task_type, task_type),  # type: ignore[arg-type]
        status=last.status,
        status_desc=last.status_desc,
        event_time=last.event_time,
        request_id=last.request_id,
        seen=(task.seen if task else frozenset()) | {key},
        last_position=event.position if moved or task is None else task.last_position,
        updated_at=event.received_at
        if task is None
        else (max(task.updated_at, event.received_at) if moved else task.updated_at),
        event_time_precise=last.precise,
        first_run_at=first_run,
        latest=latest,
        progress=None if task is None else task.progress,
        progress_at=None if task is None else task.progress_at,
        pushed=frozenset() if task is None else task.pushed,
        observed=frozenset() if task is None else task.observed,
    )
    recorded = not transition.applied or before != mine.status
    return changed, (transition if recorded else None)


def in_utc(task: Task) -> Task:
    """The task with every time aware. A row an older version wrote from a year-1 or a
    year-9999 event holds -infinity or infinity, which the store reads back naive; compared
    with an aware time, that raised TypeError on every later delivery (instants.py)."""
    times = (
        task.event_time,
        task.updated_at,
        task.first_run_at,
        *(e.event_time for e in task.latest),
    )
    if all(t is None or t.tzinfo is not None for t in times):
        return task
    return task._replace(
        event_time=as_utc(task.event_time),
        updated_at=as_utc(task.updated_at),
        first_run_at=None if task.first_run_at is None else as_utc(task.first_run_at),
        latest=tuple(e._replace(event_time=as_utc(e.event_time)) for e in task.latest),
    )


def _order(event: TaskEvent) -> tuple[datetime, str, str, str]:
    return (event.event_time, *_content(event))
