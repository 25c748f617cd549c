"""What ListBatchTasks, ShowBatchTask and StopBatchTask answer, for the IoTDA fake
(tests/support/fake_iotda.py): their query parameters and bodies checked against the documented
limits (the SDK's request models), and the JSON the SDK's response models read
(`ListBatchTasksResponse`, `ShowBatchTaskResponse`, `StopBatchTaskResponse`, `Task`,
`TaskProgress`, `TaskDetail`, `ErrorInfo`, `Page`, `BatchTargetResult`). A refusal is raised as
`Reply`.

`page.count` is read as every record matching the filters, whatever the marker; `page.marker` is
the last record's id, absent from an empty page. Without a marker a page starts at the newest
record (the documented default marker is `ffffffffffffffffffffffff`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from tests.support.iotda_tasks import (
    FINISHED,
    STOP_TASK_TYPES,
    SUBTASK_STATUSES,
    TASK_STATUSES,
    TASK_TYPES,
    BatchTask,
    ListedTargets,
    Platform,
)

# (status, error_code, error_msg). Sources: "doc" IoTDA's public error code list
# (api-iothub iot_06_v5_0018); "seen" reported from the live service; "APIG" the API gateway's
# FAQ; "fake" this fake's own choice where no source was found: key on the status for those.
ERRORS = {
    "invalid": (400, "IOTDA.000006", "Invalid input data."),  # doc
    "bad_body": (  # doc
        400, "IOTDA.000008",
        "Invalid input. Bad request, for more detail, refer to the error message.",
    ),
    # StopBatchTask on a task that has finished or is stopping: its docstring says the call is
    # not allowed, but neither it nor the error code list names the status or the code.
    "not_stoppable": (  # fake
        400, "IOTDA.014126", "The batch task status does not allow it to be stopped.",
    ),
    # A target StopBatchTask could not stop, in its answer's `targets` (200): the code is in the
    # documented example answer (api-iothub StopBatchTask); its message is the fake's own.
    "target_not_stopped": (  # doc (code), fake (message)
        200, "IOTDA.014219", "The subtask of the target cannot be stopped.",
    ),
    "limit": (  # doc
        400, "IOTDA.000017", "Invalid input. The specified parameter 'limit' is out of range.",
    ),
    "unauthorized": (401, "IOTDA.000002", "Authentication failed."),  # seen (bad signature)
    "locked": (  # APIG: after five failed signatures in a row, the AK is refused for 5 minutes
        401, "APIG.0301",
        "Incorrect IAM authentication information: AK access failed to reach the limit,forbidden.",
    ),
    "instance": (403, "IOTDA.000005", "Access forbidden. The instance does not match."),  # fake
    "no_route": (404, "IOTDA.000029", "The requested resource does not exist."),  # seen (code)
    "no_task": (404, "IOTDA.000404", "The batch task does not exist."),  # fake
    "throttled": (  # APIG
        429, "APIG.0308",
        "The throttling threshold has been reached: policy user over ratelimit,limit:{limit},time:1 second",  # noqa: E501
    ),
    "internal": (500, "IOTDA.000001", "Internal server error."),  # doc
}  # fmt: skip
_MOST_TARGETS = 100  # BatchTargets.targets: "最多支持100个目标"
_MARKER, _TASK_ID = re.compile(r"[0-9a-fA-F]{24}"), re.compile(r"[0-9a-f]{1,24}")
_NAME = {
    "app_id": re.compile(r"[A-Za-z0-9_-]{1,36}"),
    "target": re.compile(r"[A-Za-z0-9_-]{1,128}"),
}


class Reply(Exception):  # noqa: N818 - control flow: the answer, found early
    def __init__(self, kind: str, detail: str | None = None, **fill: object) -> None:
        super().__init__(kind)
        self.status, code, message = ERRORS[kind]
        self.body = {"error_code": code, "error_msg": message.format(**fill)}
        self.detail = detail or kind

    @classmethod
    def fault(cls, status: int) -> Reply:
        """A scripted server error: IoTDA's internal-error body with another 5xx status."""
        reply = cls("internal", f"scripted {status}")
        reply.status = status
        return reply


def list_batch_tasks(platform: Platform, query: dict[str, str]) -> dict[str, Any]:
    """ListBatchTasks' answer to a query (the platform's lock held)."""
    task_type = query.get("task_type")
    if task_type not in TASK_TYPES:
        raise Reply("invalid", f"task_type {task_type!r}")
    status = _choice(query, "status", TASK_STATUSES)
    limit, offset, marker = _paging(query)
    tasks = platform.listed(task_type, _name(query, "app_id"), status)
    after = [task for task in tasks if task.task_id < marker]
    page = after[offset : offset + limit]
    return {
        "batchtasks": [_task_json(task) for task in page],
        "page": _page(len(tasks), page[-1].task_id if page else None),
    }


def show_batch_task(platform: Platform, task_id: str, query: dict[str, str]) -> dict[str, Any]:
    """ShowBatchTask's answer to a query (the platform's lock held)."""
    if not _TASK_ID.fullmatch(task_id):
        raise Reply("invalid", f"task_id {task_id!r}")
    status = _choice(query, "task_detail_status", SUBTASK_STATUSES)
    target, (limit, offset, marker) = _name(query, "target"), _paging(query)
    task = platform.tasks.get(task_id)
    if task is None:
        raise Reply("no_task", f"no task {task_id}")
    indexes, count = _chosen(task, marker, status, target)
    page = list(itertools.islice(indexes, offset, offset + limit))
    return {
        "batchtask": _task_json(task),
        "task_details": [_detail_json(task, index) for index in page],
        "page": _page(count, task.detail_id(page[-1]) if page else None),
    }


def stop_batch_task(
    platform: Platform, task_id: str, body: bytes
) -> tuple[dict[str, Any], BatchTask | None]:
    """StopBatchTask's answer to a body `{}` or `{"targets": [device ids]}` (the platform's
    lock held). The targets given are stopped at once; of `{}` the task goes to Stopping and
    is returned, for the caller to bring to Stopped (`BatchTask.stop()`), and the answer lists
    no targets (the fake's choice: the documented example lists only the targets given)."""
    if not _TASK_ID.fullmatch(task_id):
        raise Reply("invalid", f"task_id {task_id!r}")
    try:
        document = json.loads(body)
    except ValueError:
        raise Reply("bad_body", "the body is not JSON") from None
    targets = document.get("targets") if isinstance(document, dict) else ()
    if targets is not None and not (
        isinstance(targets, list)
        and 1 <= len(targets) <= _MOST_TARGETS
        and all(isinstance(target, str) for target in targets)
    ):
        raise Reply("invalid", f"targets {targets!r}: 1..{_MOST_TARGETS} device ids")
    task = platform.tasks.get(task_id)
    if task is None:
        raise Reply("no_task", f"no task {task_id}")
    if task.task_type not in STOP_TASK_TYPES:
        raise Reply("invalid", f"a {task.task_type} task cannot be stopped")
    if task.status in FINISHED or task.status == "Stopping":
        raise Reply("not_stoppable", f"task {task_id} is {task.status}")
    if targets is None:
        task.status = "Stopping"
        return {"targets": []}, task
    refused = task.stop(targets)
    return {"targets": [_target_json(target, target not in refused) for target in targets]}, None


def _target_json(target: str, stopped: bool) -> dict[str, Any]:
    if stopped:
        return {"target": target, "status": "success"}
    _, code, message = ERRORS["target_not_stopped"]
    return {"target": target, "status": "failure", "error_code": code, "error_msg": message}


def _chosen(
    task: BatchTask, marker: str, status: str | None, target: str | None
) -> tuple[Iterator[int], int]:
    """The indexes a ShowBatchTask page is taken from (highest first), and how many match."""
    if target is None:
        below = task.position_below(marker)
        count = task.subtasks.size if status is None else task.subtasks.counts[status]
        return task.subtasks.below(below, status), count
    index = task.targets.position(target)
    hits = [] if index is None else [index]
    hits = [i for i in hits if status is None or task.subtasks[i].status == status]
    return iter([i for i in hits if i < task.position_below(marker)]), len(hits)


def _task_json(task: BatchTask) -> dict[str, Any]:
    body: dict[str, Any] = {"task_id": task.task_id, "task_name": task.task_name}
    body["task_type"] = task.task_type
    if isinstance(task.targets, ListedTargets):
        body["targets"] = task.targets.ids
    else:  # a fleet this size is targeted by group, and its targets are not echoed
        body["targets_filter"] = {"group_ids": [f"group-{task.task_id[-8:]}"]}
    body["document"] = task.document
    body["status"] = task.status
    if task.status_desc is not None:
        body["status_desc"] = task.status_desc
    body["task_progress"] = task.progress()
    body["create_time"] = task.created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return body


def _detail_json(task: BatchTask, index: int) -> dict[str, Any]:
    subtask = task.subtasks[index]
    body: dict[str, Any] = {"target": task.device(index), "status": subtask.status}
    if subtask.output is not None:
        body["output"] = subtask.output
    if subtask.error is not None:
        body["error"] = {"error_code": subtask.error[0], "error_msg": subtask.error[1]}
    return body


def _page(count: int, marker: str | None) -> dict[str, Any]:
    return {"count": count} if marker is None else {"count": count, "marker": marker}


def _paging(query: dict[str, str]) -> tuple[int, int, str]:
    limit = _integer(query, "limit", 10)
    if not 1 <= limit <= 50:
        raise Reply("limit", f"limit {limit} not in 1..50")
    offset = _integer(query, "offset", 0)
    if not 0 <= offset <= 500:
        raise Reply("invalid", f"offset {offset} not in 0..500")
    marker = query.get("marker", "f" * 24)
    if not _MARKER.fullmatch(marker):
        raise Reply("invalid", f"marker {marker!r} is not 24 hex digits")
    return limit, offset, marker.lower()


def _integer(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query[name]) if name in query else default
    except ValueError:
        raise Reply("invalid", f"{name} {query[name]!r} is not an integer") from None


def _choice(query: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise Reply("invalid", f"{name} {value!r}")
    return value


def _name(query: dict[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is not None and not _NAME[name].fullmatch(value):
        raise Reply("invalid", f"{name} {value!r}")
    return value
