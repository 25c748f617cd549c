"""Small builders for notifications and recorded events in unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracker.domain.notifications import (
    BatchTaskUpdated,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    SwUpgradeResult,
    SwUpgradeStateChanged,
)
from tracker.domain.recorded import Recorded

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
STEPS = {"idle": "0", "downloading": "1", "downloaded": "2", "updating": "3"}
_AS_STEP = object()  # fw's stepDesc: the name of the step's state, as the platform writes it


def at(position, notification, second=None, readmitted=False):
    """The event at `position`, received `position` seconds after T0 (or `second` seconds after:
    a readmitted delivery keeps the time it was first received)."""
    received = T0 + timedelta(seconds=position if second is None else second)
    return Recorded(position, received, notification, readmitted)


def ids(device="d-1", op="op-1", sub="sub-1", app="app-1"):
    return {"deviceId": device, "appId": app, "operationId": op, "subOperationId": sub}


def sw(state, **kw):
    return SwUpgradeStateChanged(
        notifyType="swUpgradeStateChangeNotify", swUpgradeState=state, **ids(**kw)
    )


def fw(state, step_desc=_AS_STEP, **kw):
    """A firmware report of `state`; `step_desc` says it in words (None: not sent)."""
    return FwUpgradeStateChanged(
        notifyType="fwUpgradeStateChangeNotify",
        step=STEPS[state],
        stepDesc=state if step_desc is _AS_STEP else step_desc,
        **ids(**kw),
    )


def sw_result(
    result="SUCCESS", cur="2.0", target="2.0", source="1.0", error=None, desc="done", **kw
):
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


def fw_result(result="SUCCESS", cur="2.0", target="2.0", source="1.0", desc="fw done", **kw):
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


def task(status, second=0, request_id="r", task_id="t-1", ms=True, desc="d", millis=0):
    """A batch task event at T0 + `second`.`millis`: `ms=False` sends only `event_time`, which
    is to the second (the milliseconds are lost)."""
    when = T0 + timedelta(seconds=second, milliseconds=millis)
    document = {
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
