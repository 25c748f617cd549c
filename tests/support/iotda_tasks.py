"""The platform side of the IoTDA fake (tests/support/fake_iotda.py): batch tasks and their
per-device subtasks, as the SDK's models name them (huaweicloudsdkiotda 3.1.219, `v5/model/`:
`Task`, `TaskProgress`, `TaskDetail`, `ErrorInfo`, `Page`). Pure state, no I/O.

A task of 1,000,000 devices costs a few hundred bytes: its targets are generated from an index
(`device-0000000` …), and its subtasks are held as runs of equal state over the indexes, so
moving a range or every device of one status is one run, and a page of 50 is found by walking
runs, not devices.

Record ids follow IoTDA's `marker` contract (ListBatchTasks/ShowBatchTask docstrings): 24 hex
digits, newer records have larger ids, a page holds records with id < marker, largest first. A
task's id is its record id (creation second, then a sequence: an ObjectId's order); the subtask
of target index i has id (task prefix << 40) | i, so the last target is the "newest" detail.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# TaskDetail.status and ShowBatchTaskRequest.task_detail_status; "Waitting" is IoTDA's spelling.
SUBTASK_STATUSES = (
    "Waitting", "Processing", "Success", "Fail", "FailWaitRetry", "Stopped", "Removed",
)  # fmt: skip
# TaskProgress's field for each subtask status.
PROGRESS_FIELDS = {
    "Processing": "processing",
    "Success": "success",
    "Fail": "fail",
    "Waitting": "waitting",
    "FailWaitRetry": "fail_wait_retry",
    "Stopped": "stopped",
    "Removed": "removed",
}
# Task.status and ListBatchTasksRequest.status.
TASK_STATUSES = (
    "Initializing", "Waitting", "Processing", "Success", "Fail", "PartialSuccess", "Stopped",
    "Stopping",
)  # fmt: skip
# ListBatchTasksRequest.task_type.
TASK_TYPES = (
    "softwareUpgrade", "firmwareUpgrade", "moduleUpgrade", "createDevices", "deleteDevices",
    "freezeDevices", "unfreezeDevices", "createCommands", "createAsyncCommands", "createMessages",
    "updateDeviceShadows", "updateDevices",
)  # fmt: skip
# StopBatchTask (its docstring): only these task types; a task in FINISHED or Stopping is refused;
# the subtasks it stops are those still STOPPABLE.
STOP_TASK_TYPES = ("firmwareUpgrade", "softwareUpgrade")
FINISHED = ("Success", "Fail", "PartialSuccess", "Stopped")
STOPPABLE = ("Processing", "Waitting", "FailWaitRetry")
_DETAIL_BITS = 40  # a task may have up to 2**40 subtasks


@dataclass(frozen=True)
class Subtask:
    """One device's part of a task. `since` (time.time() of the last change) is the fake's own:
    IoTDA's TaskDetail carries no time, so it is never sent."""

    status: str = "Waitting"
    output: str | None = None
    error: tuple[str, str] | None = None  # (error_code, error_msg)
    since: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in SUBTASK_STATUSES:
            raise ValueError(f"not a subtask status: {self.status!r}")


class GeneratedTargets:
    """`count` device ids `{prefix}{index:0Nd}`, made on demand."""

    def __init__(self, prefix: str, count: int) -> None:
        self.prefix, self.count, self.width = prefix, count, len(str(max(count - 1, 0)))
        self._pattern = re.compile(re.escape(prefix) + rf"(\d{{{self.width}}})")

    def __len__(self) -> int:
        return self.count

    def at(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return f"{self.prefix}{index:0{self.width}d}"

    def position(self, device_id: str) -> int | None:
        match = self._pattern.fullmatch(device_id)
        index = int(match.group(1)) if match else -1
        return index if 0 <= index < self.count else None


class ListedTargets:
    def __init__(self, device_ids: Iterable[str]) -> None:
        self.ids = list(device_ids)
        self._where = {device_id: i for i, device_id in enumerate(self.ids)}
        if len(self._where) != len(self.ids):
            raise ValueError("a device appears twice in the targets")

    def __len__(self) -> int:
        return len(self.ids)

    def at(self, index: int) -> str:
        return self.ids[index]

    def position(self, device_id: str) -> int | None:
        return self._where.get(device_id)


class Subtasks:
    """The subtasks of indexes 0..size-1 as runs: run k covers [starts[k], starts[k+1])."""

    def __init__(self, size: int, initial: Subtask) -> None:
        self.size = size
        self._starts, self._states = [0], [initial]
        self.counts: Counter[str] = Counter({initial.status: size} if size else {})

    def __getitem__(self, index: int) -> Subtask:
        return self._states[bisect.bisect_right(self._starts, index) - 1]

    def assign(self, lo: int, hi: int, state: Subtask) -> None:
        lo, hi = max(lo, 0), min(hi, self.size)
        if lo >= hi:
            return
        first = self._split(lo)
        last = self._split(hi) if hi < self.size else len(self._starts)
        for k in range(first, last):
            self.counts[self._states[k].status] -= self._end(k) - self._starts[k]
        del self._starts[first + 1 : last], self._states[first + 1 : last]
        self._states[first] = state
        self.counts[state.status] += hi - lo

    def runs(self, status: str | None = None) -> Iterator[tuple[int, int, Subtask]]:
        """(lo, hi, state) of each run, lowest index first, of one status or all."""
        for k, state in enumerate(self._states):
            if status is None or state.status == status:
                yield self._starts[k], self._end(k), state

    def below(self, position: int, status: str | None = None) -> Iterator[int]:
        """Indexes under `position`, highest first (IoTDA's order), of one status or all."""
        k = bisect.bisect_right(self._starts, position - 1) - 1
        while k >= 0:
            if status is None or self._states[k].status == status:
                yield from range(min(self._end(k), position) - 1, self._starts[k] - 1, -1)
            k -= 1

    def _end(self, k: int) -> int:
        return self._starts[k + 1] if k + 1 < len(self._starts) else self.size

    def _split(self, index: int) -> int:
        k = bisect.bisect_right(self._starts, index) - 1
        if self._starts[k] != index:
            k += 1
            self._starts.insert(k, index)
            self._states.insert(k, self._states[k - 1])
        return k


@dataclass(eq=False)
class BatchTask:
    task_id: str
    task_type: str
    targets: GeneratedTargets | ListedTargets
    subtasks: Subtasks
    app_id: str | None
    created: datetime
    task_name: str
    status: str = "Processing"
    status_desc: str | None = None
    document: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def detail_prefix(self) -> int:
        return int(self.task_id[:8], 16) << 24 | int(self.task_id[8:], 16) & 0xFFFFFF

    def detail_id(self, index: int) -> str:
        return f"{self.detail_prefix << _DETAIL_BITS | index:024x}"

    def position_below(self, marker: str) -> int:
        """How many of this task's subtasks have a record id below `marker`."""
        lowest = self.detail_prefix << _DETAIL_BITS
        return max(0, min(self.subtasks.size, int(marker, 16) - lowest))

    def device(self, index: int) -> str:
        return self.targets.at(index)

    def subtask(self, device_id: str) -> Subtask:
        return self.subtasks[self._position(device_id)]

    def set(
        self,
        devices: str | Iterable[str],
        status: str,
        *,
        output: str | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        """Give these devices' subtasks a status (and output, error), as between two polls."""
        state = Subtask(status, output, error, time.time())
        with self._lock:
            for device_id in [devices] if isinstance(devices, str) else devices:
                index = self._position(device_id)
                self.subtasks.assign(index, index + 1, state)

    def set_range(self, lo: int, hi: int, status: str, **outcome: Any) -> None:
        """The same for target indexes lo..hi-1, in one step whatever their number."""
        with self._lock:
            self.subtasks.assign(lo, hi, Subtask(status, since=time.time(), **outcome))

    def move(self, current: str, status: str, count: int | None = None, **outcome: Any) -> int:
        """Move up to `count` (default all) subtasks in status `current` to `status`, lowest
        target index first; returns how many moved."""
        state, moved = Subtask(status, since=time.time(), **outcome), 0
        with self._lock:
            for lo, hi, _ in list(self.subtasks.runs(current)):
                take = hi - lo if count is None else min(hi - lo, count - moved)
                self.subtasks.assign(lo, lo + take, state)
                moved += take
                if count is not None and moved >= count:
                    break
        return moved

    def stop(self, devices: Iterable[str] | None = None) -> list[str]:
        """StopBatchTask's effect: these devices' subtasks, or every one, that are still
        STOPPABLE become Stopped; without devices the task itself ends Stopped. Returns the
        devices given whose subtask could not be stopped (done already, or not a target)."""
        state = Subtask("Stopped", since=time.time())
        refused: list[str] = []
        with self._lock:
            if devices is None:
                for status in STOPPABLE:
                    for lo, hi, _ in list(self.subtasks.runs(status)):
                        self.subtasks.assign(lo, hi, state)
                self.status = "Stopped"
                return refused
            for device_id in devices:
                index = self.targets.position(device_id)
                if index is None or self.subtasks[index].status not in STOPPABLE:
                    refused.append(device_id)
                else:
                    self.subtasks.assign(index, index + 1, state)
        return refused

    def progress(self) -> dict[str, int]:
        counts = self.subtasks.counts
        return {"total": self.subtasks.size} | {
            name: counts[status] for status, name in PROGRESS_FIELDS.items()
        }

    def finish(self) -> str:
        """Set the task's final status from its subtasks (all succeeded: Success; none:
        Fail; some: PartialSuccess) and return it."""
        counts = self.subtasks.counts
        done = counts["Success"]
        self.status = (
            "Success" if done == self.subtasks.size else "PartialSuccess" if done else "Fail"
        )
        return self.status

    def _position(self, device_id: str) -> int:
        index = self.targets.position(device_id)
        if index is None:
            raise KeyError(f"{device_id} is not a target of task {self.task_id}")
        return index


class Platform:
    """Every batch task of one project, newest (largest id) first when listed."""

    def __init__(self) -> None:
        self.tasks: dict[str, BatchTask] = {}
        self.lock = threading.RLock()
        self._sequence = 0

    def create_task(
        self,
        targets: int | Sequence[str],
        *,
        task_type: str = "softwareUpgrade",
        app_id: str | None = None,
        status: str = "Processing",
        created: datetime | None = None,
        task_name: str | None = None,
        device_prefix: str = "device-",
        initial: str = "Waitting",
        package_id: str = "5f0c0e0b0a09080706050403",
    ) -> BatchTask:
        """A task over `targets`: a list of device ids, or a number of generated ones."""
        if task_type not in TASK_TYPES or status not in TASK_STATUSES:
            raise ValueError(f"unknown task type or status: {task_type!r}, {status!r}")
        created = created or datetime.now(UTC)
        with self.lock:
            self._sequence += 1
            task_id = f"{int(created.timestamp()):08x}{self._sequence:016x}"
            devices = (
                GeneratedTargets(device_prefix, targets)
                if isinstance(targets, int)
                else ListedTargets(targets)
            )
            task = BatchTask(
                task_id=task_id,
                task_type=task_type,
                targets=devices,
                subtasks=Subtasks(len(devices), Subtask(initial, since=time.time())),
                app_id=app_id,
                created=created,
                task_name=task_name or f"task-{self._sequence}",
                status=status,
                document={"package_id": package_id},
                _lock=self.lock,
            )
            self.tasks[task_id] = task
        return task

    def listed(self, task_type: str, app_id: str | None, status: str | None) -> list[BatchTask]:
        chosen = [
            task
            for task in self.tasks.values()
            if task.task_type == task_type
            and (app_id is None or task.app_id == app_id)
            and (status is None or task.status == status)
        ]
        return sorted(chosen, key=lambda task: task.task_id, reverse=True)
