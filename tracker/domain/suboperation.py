"""One sub-operation of one device track: everything its deliveries said, kept as a set.

A sub-operation (`subOperationId`) is one device's part in one upgrade operation: "the upgrade
of each device involved in the task is a subtask" (OceanConnect API reference, "Querying
Subtask Details of a Task", iot_06_0081). Its notifications carry no time and the platform
re-pushes any that failed (minutes later, or after a backlog), so what a sub-operation shows is
folded from what its deliveries *mean*, never from the order they came in:

- **Its state is the furthest it reported**: downloading < downloaded < updating < idle. Idle is
  where a sub-operation ends: LwM2M's firmware object is Idle "before downloading or after a
  successful update" and returns to it when a download fails, and the platform notifies only
  changes, so a task's first report is `downloading`; an `idle` under a sub-operation is its
  end. A report of a step before the furthest is late (`stale`) and changes nothing.
- **Its result is a SUCCESS if one came, else its FAIL.** The platform's retry policy
  (`retryType`, `retryTimes` 1-5, on creating the task) re-runs only failed sub-tasks ("只重试
  失败的子任务, 已升级成功的设备不会再重试"), so a FAIL may be followed by a SUCCESS, never the
  reverse. Between two results of the same outcome nothing tells which came last; the greater
  content is kept, so that every order keeps the same.
- **A retry inside one sub-operation cannot be seen until its result.** Its reports
  (`downloading` again...) are byte for byte the first attempt's, so they read as the
  platform's re-pushes of those, and change nothing. Likewise an update that failed back to
  `downloaded` (LwM2M) leaves the state at `updating`, the furthest step, and its FAIL says
  what happened.
- **A repeat changes nothing and records nothing**: `seen` holds the states and results already
  folded in, whichever order they came in.
- **Finished**: its result is in, or it is idle.

`state_since`, `first_seen_at`, `last_position` and `updated_at` are arrival facts: when (and
at which position) deliveries were received.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple, assert_never

from tracker.domain.notifications import (
    DeviceNotification,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    Result,
    ResultReport,
    StateReport,
    SwUpgradeResult,
    SwUpgradeStateChanged,
    Track,
    UpgradeState,
)
from tracker.domain.recorded import Recorded

STEP_STATES: dict[str, UpgradeState] = {
    "0": "idle",
    "1": "downloading",
    "2": "downloaded",
    "3": "updating",
}
# How far into its lifecycle a sub-operation is: idle last, where it ends.
PROGRESS: dict[UpgradeState, int] = {"downloading": 1, "downloaded": 2, "updating": 3, "idle": 4}


class UpgradeResult(NamedTuple):
    """A result as reported. `anomaly`: a SUCCESS whose current version is not the target, or a
    FAIL whose current version is the target; None when a version is missing (cannot judge)."""

    result: Result
    source_version: str | None
    target_version: str | None
    current_version: str | None
    error_code: str | None
    result_desc: str | None
    description: str | None
    upgrade_time: str | int | None
    anomaly: bool | None
    operation_id: str
    sub_operation_id: str
    position: int  # the delivery that first said it (an arrival fact)
    received_at: datetime  # ... and when it was received


class SubOperation(NamedTuple):
    """One sub-operation of one device track, as its deliveries describe it (module doc)."""

    device_id: str
    track: Track
    operation_id: str
    sub_operation_id: str
    app_id: str  # the least its reports name (one device, one application: they agree)
    state: UpgradeState | None  # the furthest state reported; None: only a result so far
    state_since: datetime | None  # when that state was first received
    result: UpgradeResult | None  # the result that counts: a SUCCESS over a FAIL
    seen: frozenset[str]  # the states and results folded in (`mark`)
    first_seen_at: datetime
    last_position: int  # the last delivery that said something new
    updated_at: datetime  # the latest receive time of those (never moves back)


def finished(sub: SubOperation) -> bool:
    return sub.result is not None or sub.state == "idle"


def reported_state(notification: StateReport) -> tuple[UpgradeState, bool]:
    """The state a report gives, and whether it contradicts itself.

    Firmware reports say it twice, as `step` ("0".."3") and as `stepDesc`; when the two disagree
    the state follows `step` (the platform's machine-readable field) and the report is marked
    inconsistent. A missing `stepDesc` has nothing to disagree with.
    """
    match notification:
        case SwUpgradeStateChanged():
            return notification.swUpgradeState, False
        case FwUpgradeStateChanged():
            state = STEP_STATES[notification.step]
            said = notification.stepDesc
            return state, said is not None and said.strip().lower() != state
        case _:
            assert_never(notification)


def anomaly(outcome: Result, current: str | None, target: str | None) -> bool | None:
    """A result that contradicts its own versions; None when one of them is missing."""
    if current is None or target is None:
        return None
    return current != target if outcome == "SUCCESS" else current == target


def result_of(event: Recorded[ResultReport]) -> UpgradeResult:
    return reported_result(event.notification, event.position, event.received_at)


def reported_result(n: ResultReport, position: int, received_at: datetime) -> UpgradeResult:
    """The result a report gives, first said by the delivery at `position`."""
    match n:
        case SwUpgradeResult():
            outcome, error_code, result_desc, description = (
                n.swUpgradeResult,
                n.errorCode,
                n.resultDesc,
                n.description,
            )
        case FwUpgradeResult():
            outcome, error_code, result_desc, description = n.status, None, n.statusDesc, None
        case _:
            assert_never(n)
    return UpgradeResult(
        result=outcome,
        source_version=n.sourceVersion,
        target_version=n.targetVersion,
        current_version=n.curVersion,
        error_code=error_code,
        result_desc=result_desc,
        description=description,
        upgrade_time=n.upgradeTime,
        anomaly=anomaly(outcome, n.curVersion, n.targetVersion),
        operation_id=n.operationId,
        sub_operation_id=n.subOperationId,
        position=position,
        received_at=received_at,
    )


def mark(said: UpgradeState | UpgradeResult) -> str:
    """How `seen` remembers a state or a result: equal for re-deliveries of the same report."""
    if isinstance(said, str):
        return said
    digest = hashlib.blake2b(repr(_content(said)).encode(), digest_size=8).hexdigest()
    return f"result:{digest}"


def _content(result: UpgradeResult) -> tuple[object, ...]:
    """Everything a result says (not which delivery said it, nor when)."""
    return result[:11]  # every field before `position`


def outranks(new: UpgradeResult, held: UpgradeResult) -> bool:
    """Whether `new` is the result that counts rather than `held` (same sub-operation)."""
    return _rank(new) > _rank(held)


def _rank(result: UpgradeResult) -> tuple[object, ...]:
    # A SUCCESS ends a sub-operation's retries; otherwise a fixed order of the content, so that
    # every arrival order keeps the same one.
    return (result.result == "SUCCESS", *("" if v is None else str(v) for v in _content(result)))


def take(sub: SubOperation | None, event: Recorded[DeviceNotification]) -> SubOperation | None:
    """The sub-operation with `event` folded in; None when it said nothing new (a repeat)."""
    n = event.notification
    said: UpgradeState | UpgradeResult
    match n:
        case SwUpgradeStateChanged() | FwUpgradeStateChanged():
            said = reported_state(n)[0]
        case SwUpgradeResult() | FwUpgradeResult():
            said = reported_result(n, event.position, event.received_at)
        case _:
            assert_never(n)
    seen = mark(said)
    if sub is not None and seen in sub.seen:
        return None
    state = since = result = None
    if sub is not None:
        state, since, result = sub.state, sub.state_since, sub.result
    if isinstance(said, str):
        if state is None or PROGRESS[said] > PROGRESS[state]:
            state, since = said, event.received_at
    elif result is None or outranks(said, result):
        result = said
    if sub is None:
        return SubOperation(
            n.deviceId,
            n.track,
            n.operationId,
            n.subOperationId,
            n.appId,
            state,
            since,
            result,
            frozenset((seen,)),
            event.received_at,
            event.position,
            event.received_at,
        )
    return SubOperation(
        sub.device_id,
        sub.track,
        sub.operation_id,
        sub.sub_operation_id,
        min(sub.app_id, n.appId),
        state,
        since,
        result,
        sub.seen | {seen},
        sub.first_seen_at,
        event.position,
        max(sub.updated_at, event.received_at),
    )
