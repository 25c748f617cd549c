"""From one ShowBatchTask answer to the events it adds to the log: only what the log does not
already say. Pure: the reconciler hands in the answer and what the projections hold.

Each event's body carries the part of the answer it came from byte for byte (the `batchtask`
object, or one `task_details` entry), cut out of the response's own bytes, with the time the
answer arrived and the request that asked for it: the log keeps the platform's words, not ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from tracker.domain.delivery import NewEvent
from tracker.domain.notifications import (
    TASK_TYPES,
    BatchTaskObserved,
    SubtaskObserved,
    TaskType,
)
from tracker.domain.task import Progress

TASK_EVENT = "iotda.batchtask.observed"
SUBTASK_EVENT = "iotda.subtask.observed"
FINAL = frozenset({"Success", "PartialSuccess", "Fail", "Stopped"})  # a task that has ended
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class HeldTask(NamedTuple):
    """What the log says of a task now (its projection row)."""

    status: str
    progress: Progress | None


class HeldMember(NamedTuple):
    """What the log says of one device's subtask now (its member row)."""

    status: str | None
    error_code: str | None
    error_msg: str | None


def said_of(observed: SubtaskObserved) -> HeldMember:
    """What a member holds once this observation is folded in."""
    fault = observed.detail.error
    return HeldMember(
        observed.detail.status,
        None if fault is None else fault.error_code,
        None if fault is None else fault.error_msg,
    )


class Asked(NamedTuple):
    """The answer, and how it came: when, to which request, for which application."""

    raw: bytes
    observed_at: datetime
    request: str
    app_id: str | None


class Read(NamedTuple):
    """What one answer says: the task, its page of subtasks, and what to append."""

    status: str
    task_type: str
    progress: Progress | None
    targets: list[str]  # the page's devices, in its order
    marker: str | None  # where the next page starts; None: this was the last
    matched: int | None  # the records the filter matches in all (`page.count`)
    events: list[NewEvent]
    skipped: int  # entries the models refused (logged by the caller, never appended)


class Malformed(Exception):  # noqa: N818 - reads as "the answer is malformed"
    """An answer that is not the JSON ShowBatchTask documents."""


def spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each member of the JSON object `text` is: (start, end) of its value."""
    found: dict[str, tuple[int, int]] = {}
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise Malformed("the answer is not a JSON object")
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return found
    while True:
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i : i + 1] != ":":
            raise Malformed("a member without ':'")
        start = _skip(text, i + 1)
        _, end = _DECODER.raw_decode(text, start)
        found[key] = (start, end)
        i = _skip(text, end)
        if text[i : i + 1] == "}":
            return found
        if text[i : i + 1] != ",":
            raise Malformed("members not separated by ','")
        i = _skip(text, i + 1)


def elements(text: str, start: int) -> list[tuple[int, int]]:
    """Where each element of the JSON array at `start` is."""
    found: list[tuple[int, int]] = []
    i = _skip(text, start + 1)
    if text[i : i + 1] == "]":
        return found
    while True:
        _, end = _DECODER.raw_decode(text, i)
        found.append((i, end))
        i = _skip(text, end)
        if text[i : i + 1] == "]":
            return found
        if text[i : i + 1] != ",":
            raise Malformed("elements not separated by ','")
        i = _skip(text, i + 1)


def _skip(text: str, i: int) -> int:
    match = _SPACE.match(text, i)
    return i if match is None else match.end()


def read(
    asked: Asked,
    held_task: HeldTask | None,
    held_members: Mapping[str, HeldMember],
    *,
    with_task: bool,
) -> Read:
    """The events one answer adds: the task's, if `with_task` and its status or progress is new
    to the log, and one per subtask whose status or error is."""
    try:
        text = asked.raw.decode()
        where = spans(text)
        document: dict[str, Any] = orjson.loads(asked.raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise Malformed(f"the answer is not JSON: {error}") from error
    if "batchtask" not in where or not isinstance(document.get("batchtask"), dict):
        raise Malformed("the answer has no batchtask")
    head = _head(asked)
    task_raw = text[slice(*where["batchtask"])].encode()
    task_event, body = _task_event(head, task_raw)
    progress = body.batchtask.task_progress
    progress_now = None if progress is None else Progress(**progress.model_dump())
    events: list[NewEvent] = []
    if with_task and (
        held_task is None
        or held_task.status != body.batchtask.status
        or (progress_now is not None and progress_now != held_task.progress)
    ):
        events.append(task_event)
    details = where.get("task_details")
    targets: list[str] = []
    skipped = 0
    task_type = body.batchtask.task_type
    if details is not None and text[details[0]] == "[" and task_type in TASK_TYPES:
        for start, end in elements(text, details[0]):
            event = _subtask_event(head, body.batchtask.task_id, task_type, text[start:end])
            if event is None:
                skipped += 1
                continue
            n = event.notification
            assert isinstance(n, SubtaskObserved)  # noqa: S101 - _subtask_event validated it
            targets.append(n.detail.target)
            if held_members.get(n.detail.target) != said_of(n):
                events.append(event)
    page = document.get("page")
    marker = page.get("marker") if isinstance(page, dict) else None
    count = page.get("count") if isinstance(page, dict) else None
    return Read(
        body.batchtask.status,
        task_type,
        progress_now,
        targets,
        marker if isinstance(marker, str) and marker else None,
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        events,
        skipped,
    )


def _head(asked: Asked) -> bytes:
    """The body's first members, as JSON text without its closing brace."""
    head = {
        "observed_at": asked.observed_at.isoformat(),
        "request": asked.request,
        "app_id": asked.app_id,
    }
    return orjson.dumps(head)[:-1]


def _task_event(head: bytes, task_raw: bytes) -> tuple[NewEvent, BatchTaskObserved]:
    raw = head + b',"batchtask":' + task_raw + b"}"
    try:
        observed = BatchTaskObserved.model_validate_json(raw)
    except ValidationError as refused:
        raise Malformed(f"the answer's batchtask is not IoTDA's Task: {refused}") from refused
    projected = observed if observed.is_upgrade else None
    event = NewEvent("task", observed.batchtask.task_id, TASK_EVENT, raw, None, projected)
    return event, observed


def _subtask_event(head: bytes, task_id: str, task_type: TaskType, detail: str) -> NewEvent | None:
    ids = orjson.dumps({"task_id": task_id, "task_type": task_type})[1:-1]
    raw = head + b"," + ids + b',"detail":' + detail.encode() + b"}"
    try:
        observed = SubtaskObserved.model_validate_json(raw)
    except ValidationError:
        return None
    return NewEvent("device", observed.detail.target, SUBTASK_EVENT, raw, None, observed)
