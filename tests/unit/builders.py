"""Small builders for notifications and recorded events in unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final, Literal, Protocol, TypedDict, TypeVar, Unpack

from tracker.domain.notifications import (
    AlertChanged,
    BatchTaskUpdated,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    Notification,
    Result,
    SwUpgradeResult,
    SwUpgradeStateChanged,
    TaskStatus,
    UpgradeState,
)
from tracker.domain.recorded import Recorded

N = TypeVar("N", bound=Notification)
Step = Literal["0", "1", "2", "3"]  # FwUpgradeStateChanged.step


class _AsStep(Enum):
    AS_STEP = "as step"


T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
STEPS: Final[dict[UpgradeState, Step]] = {
    "idle": "0",
    "downloading": "1",
    "downloaded": "2",
    "updating": "3",
}
# fw's stepDesc: the name of the step's state, as the platform writes it
_AS_STEP: Final = _AsStep.AS_STEP


class Ids(TypedDict):
    """A device notification's stream ids, as the platform names them."""

    deviceId: str
    appId: str
    operationId: str
    subOperationId: str


class IdArgs(TypedDict, total=False):
    """The builders' keyword arguments for the ids (see `ids`)."""

    device: str
    op: str
    sub: str
    app: str


class StateBuilder(Protocol):
    """`sw` or `fw`: a state report of either track."""

    def __call__(
        self, state: UpgradeState, /, **kw: Unpack[IdArgs]
    ) -> SwUpgradeStateChanged | FwUpgradeStateChanged: ...


class ResultBuilder(Protocol):
    """`sw_result` or `fw_result`: a result of either track."""

    def __call__(
        self,
        result: Result = ...,
        /,
        *,
        cur: str | None = ...,
        target: str | None = ...,
        **kw: Unpack[IdArgs],
    ) -> SwUpgradeResult | FwUpgradeResult: ...


def at(position: int, notification: N, second: float | None = None) -> Recorded[N]:
    """The event at `position`, received `position` seconds after T0 (or `second` seconds after:
    a readmitted delivery keeps the time it was first received)."""
    received = T0 + timedelta(seconds=position if second is None else second)
    return Recorded(position, received, notification)


def ids(device: str = "d-1", op: str = "op-1", sub: str = "sub-1", app: str = "app-1") -> Ids:
    return {"deviceId": device, "appId": app, "operationId": op, "subOperationId": sub}


def sw(state: UpgradeState, **kw: Unpack[IdArgs]) -> SwUpgradeStateChanged:
    return SwUpgradeStateChanged(
        notifyType="swUpgradeStateChangeNotify", swUpgradeState=state, **ids(**kw)
    )


def fw(
    state: UpgradeState,
    step_desc: str | Literal[_AsStep.AS_STEP] | None = _AS_STEP,
    **kw: Unpack[IdArgs],
) -> FwUpgradeStateChanged:
    """A firmware report of `state`; `step_desc` says it in words (None: not sent)."""
    return FwUpgradeStateChanged(
        notifyType="fwUpgradeStateChangeNotify",
        step=STEPS[state],
        stepDesc=state if step_desc is _AS_STEP else step_desc,
        **ids(**kw),
    )


def sw_result(
    result: Result = "SUCCESS",
    cur: str | None = "2.0",
    target: str | None = "2.0",
    source: str | None = "1.0",
    error: str | None = None,
    desc: str | None = "done",
    **kw: Unpack[IdArgs],
) -> SwUpgradeResult:
    return SwUpgradeResult(
        notifyType="swUpgradeResultNotify",
        curVersion=cur,
        targetVersion=target,
        sourceVersion=source,
        swUpgradeResult=result,
        upgradeTime="60",
        resultDesc=desc,
        errorCode=error or ("0" if result == "SUCCESS" else "E42"),
        description="desc",
        **ids(**kw),
    )


def fw_result(
    result: Result = "SUCCESS",
    cur: str | None = "2.0",
    target: str | None = "2.0",
    source: str | None = "1.0",
    desc: str | None = "fw done",
    **kw: Unpack[IdArgs],
) -> FwUpgradeResult:
    return FwUpgradeResult(
        notifyType="fwUpgradeResultNotify",
        curVersion=cur,
        targetVersion=target,
        sourceVersion=source,
        status=result,
        statusDesc=desc,
        upgradeTime=60,
        **ids(**kw),
    )


def task(
    status: TaskStatus,
    second: float = 0,
    request_id: str | None = "r",
    task_id: str = "t-1",
    ms: bool = True,
    desc: str | None = "d",
    millis: float = 0,
) -> BatchTaskUpdated:
    """A batch task event at T0 + `second`.`millis`: `ms=False` sends only `event_time`, which
    is to the second (the milliseconds are lost)."""
    when = T0 + timedelta(seconds=second, milliseconds=millis)
    document: dict[str, object] = {
        "resource": "batchtask",
        "event": "update",
        "event_time": when.strftime("%Y%m%dT%H%M%SZ"),
        "notify_data": {
            "body": {
                "app_id": "app-1",
                "task_id": task_id,
                "task_type": "softwareUpgrade",
                "status": status,
                "status_desc": desc,
            }
        },
    }
    if ms:
        document["event_time_ms"] = (
            when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        )
    if request_id is not None:
        document["request_id"] = request_id
    return BatchTaskUpdated.model_validate(document)


def alert_fired(guard: str = "g", operation: str = "op-1", number: int = 1) -> AlertChanged:
    """A guard's alert on a rollout, firing (as tracker/store/alerting.py writes one)."""
    return AlertChanged(
        id=f"{guard}:{operation}:software:{number}",
        guard=guard,
        operation_id=operation,
        track="software",
        app_id="app-1",
        platform="oceanconnect",
        state="firing",
        value=3,
        threshold=2,
        at=T0,
        fired_at=T0,
        number=number,
    )
